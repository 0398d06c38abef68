"""``kgqa-validator train`` and ``evaluate``: fine-tune the encoder, and measure models."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from kgqa_validator.cli.exits import EXIT_OK
from kgqa_validator.cli.options import checked_weight
from kgqa_validator.errors import UsageError
from kgqa_validator.label_files import load_labels
from kgqa_validator.types import Precision

TRAIN_EXAMPLES = """\
examples:
  kgqa-validator train --data lcquad2_train.json -o my-model
  kgqa-validator train --data train.json --labels labels.json --exclude test.json -o m --resume"""

EVALUATE_EXAMPLES = """\
examples:
  kgqa-validator evaluate --test lcquad2_test.json --labels labels.json
  kgqa-validator evaluate --test test.json --model a --model b --precision fp32 --precision int8
  kgqa-validator evaluate --llm-candidates generated.jsonl --output-json result.json"""


def add_parsers(sub: Any, **kwargs: Any) -> None:
    _add_train(sub, **kwargs)
    _add_evaluate(sub, **kwargs)


def _add_train(sub: Any, **kwargs: Any) -> None:
    train = sub.add_parser(
        "train", help="fine-tune the encoder from the base model",
        description="Fine-tune the question/query encoder (from the base all-MiniLM-L6-v2 or "
                    "--base) and calibrate its rejection thresholds; checkpoints let --resume "
                    "continue an interrupted run.", epilog=TRAIN_EXAMPLES, **kwargs)
    train.add_argument("--data", action="append", type=Path,
                       help="training file: LC-QuAD 2.0 JSON, labelized JSONL, LC-QuAD-NoA "
                            "JSON or {question, sparql, label} JSONL (repeatable)")
    train.add_argument("--output", "-o", required=True, type=Path, help="model folder to write")
    train.add_argument("--recipe", choices=["default", "seed", "labelized-stage", "generator-stage", "v2"],
                       default="default",
                       help="training recipe (default: default); v2: the shipped model, every stage "
                            "(needs --data-dir)")
    train.add_argument("--data-dir", type=Path,
                       help="folder holding the datasets a chained recipe (v2) reads")
    train.add_argument("--labels", action="append", default=[], type=Path,
                       help="labels file for the verbalised examples (repeatable)")
    train.add_argument("--exclude", action="append", default=[], type=Path,
                       help="never train on questions or queries of this file (a test split)")
    train.add_argument("--base", type=Path,
                       help="start from this model folder (default: the base all-MiniLM-L6-v2)")
    train.add_argument("--epochs", type=float, help="epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=int, help="examples per step (default: the recipe's)")
    train.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    train.add_argument("--seed", type=int, help="random seed (default: the recipe's)")
    train.add_argument("--max-steps", type=int, help="stop after this many steps")
    train.add_argument("--checkpoint-every", type=int, default=200, metavar="STEPS",
                       help="save a checkpoint this often (default 200 steps)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    train.add_argument("--calibrate-only", action="store_true",
                       help="only recompute --output's thresholds on this data's calibration slice")
    train.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    train.add_argument("--fp32", action="store_true", help="save fp32 weights (default fp16)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)


def _add_evaluate(sub: Any, **kwargs: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="measure models on fixed evaluation sets",
        description="Measure one or more models on the LC-QuAD 2.0 test sets (ranking and "
                    "rejection metrics), or the validator's pick among generated candidates "
                    "by answer F1.", epilog=EVALUATE_EXAMPLES, **kwargs)
    evaluate.add_argument("--test", type=Path, help="LC-QuAD 2.0 test JSON")
    evaluate.add_argument("--llm-candidates", type=Path, metavar="FILE",
                          help="JSONL of generated candidate sets with answer_f1: report the "
                               "answer-F1 of the validator's pick (see the README, Consensus)")
    evaluate.add_argument("--labelized", type=Path, help="labelized test JSONL")
    evaluate.add_argument("--model", action="append", type=Path,
                          help="model folder (repeatable; default: the shipped model)")
    evaluate.add_argument("--labels", action="append", default=[], type=Path,
                          help="labels file: adds the verbalised sets")
    evaluate.add_argument("--limit", type=int, default=2000,
                          help="examples per evaluation set (default 2000)")
    evaluate.add_argument("--output-json", type=Path, help="write the metrics here")
    evaluate.add_argument("--card", type=Path, help="write a markdown model card here")
    evaluate.add_argument("--precision", action="append",
                          choices=[p.value for p in Precision if p is not Precision.AUTO],
                          help="evaluate each model at this precision (repeatable; as "
                               "rerank --precision scores; default fp32)")
    evaluate.add_argument("--human", type=Path,
                          help="human-written questions JSONL: adds the generator-like sets of its "
                               "development slice, decided by the whole validator")
    evaluate.add_argument("--noa", type=Path, help="LC-QuAD-NoA JSON: adds the twin sets")
    evaluate.add_argument("--workers", type=int, default=1,
                          help="evaluate models in this many processes at once (default 1)")
    evaluate.add_argument("--no-property-table", action="store_true",
                          help="read property ids without the shipped property table")
    evaluate.add_argument("--consensus-weight", type=float, metavar="W",
                          help="the consensus weight of the decided sets and of the LLM-candidate "
                               "default (0 to 1; default: the validator's own)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_evaluate)


def _labels(paths: list[Path]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for path in paths:
        labels.update(load_labels(path))
    return labels


def cmd_train(args: argparse.Namespace) -> int:
    from kgqa_validator.model.recipes import CHAINED, RECIPES
    from kgqa_validator.model.train import train, train_chained

    if args.recipe in CHAINED:
        if args.data_dir is None:
            raise UsageError(f"train --recipe {args.recipe} needs --data-dir (the folder of the datasets)")
        chained = train_chained(args.recipe, args.data_dir, args.output, base=args.base,
                                device=args.device, fp16=not args.fp32, progress=not args.quiet,
                                checkpoint_every=args.checkpoint_every, max_steps=args.max_steps,
                                on_log=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"{args.recipe}: {chained.steps} steps -> {args.output} "
              f"(threshold {chained.threshold:.4f})")
        return EXIT_OK
    if not args.data:
        raise UsageError(f"train --recipe {args.recipe} needs --data FILE (repeatable)")
    recipe = RECIPES[args.recipe]
    overrides = {k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "learning_rate": args.lr}.items() if v is not None}
    recipe = replace(recipe, **overrides)
    result = train(args.data, args.output, recipe, labels=_labels(args.labels),
                   exclude=args.exclude, base=args.base,
                   max_steps=args.max_steps, resume=args.resume, device=args.device,
                   calibrate_only=args.calibrate_only,
                   fp16=not args.fp32, progress=not args.quiet,
                   checkpoint_every=args.checkpoint_every)
    print(f"trained {result.steps} steps in {result.seconds:.0f}s -> {result.output} "
          f"(threshold {result.threshold:.4f})")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from kgqa_validator.model.evaluate import evaluate_models

    if args.consensus_weight is not None:
        checked_weight(args.consensus_weight)
    if args.llm_candidates is not None:
        from kgqa_validator.config import Settings
        from kgqa_validator.model import evaluate_candidates as llm

        if len(args.model or []) > 1 or len(args.precision or []) > 1:
            raise UsageError("evaluate --llm-candidates: one --model and one --precision at a time")
        settings = Settings(
            model_path=args.model[0] if args.model else None,
            precision=Precision(args.precision[0]) if args.precision else Precision.FP32,
            property_table=not args.no_property_table)
        if args.consensus_weight is not None:
            settings = settings.with_consensus_weight(args.consensus_weight)
        result = llm.evaluate_llm_candidates(args.llm_candidates, settings, limit=args.limit,
                                             weights=llm.SENSITIVITY, progress=not args.quiet)
        result["model"] = str(args.model[0]) if args.model else "shipped"
        print("\n".join(llm.format_result(result)))
        if args.test is None:
            if args.output_json is not None:
                llm.write_result(result, args.output_json)
            return EXIT_OK
    if args.test is None:
        raise UsageError("evaluate: give --test FILE (LC-QuAD 2.0 test JSON) or --llm-candidates FILE")

    models = args.model or [None]
    result = evaluate_models(
        models, test=args.test, labelized=args.labelized, labels=_labels(args.labels),
        limit=args.limit, json_path=args.output_json, card_path=args.card,
        progress=not args.quiet, precisions=args.precision or ["fp32"], human=args.human,
        noa=args.noa, property_table=not args.no_property_table, labels_files=args.labels,
        workers=args.workers, consensus_weight=args.consensus_weight)
    for name, sets in result["models"].items():
        print(name)
        for set_name, metrics in sets.items():
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                              if isinstance(v, float) and not k.endswith("threshold"))
            print(f"  {set_name:<22} {shown}")
    return EXIT_OK
