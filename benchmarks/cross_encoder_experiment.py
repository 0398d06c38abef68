"""Would a cross-encoder second stage help?  Train one on stage 3's data and measure it.

Issue 11 asks for a second stage (a sentence-transformers ``CrossEncoder`` over the top
candidates) where the bi-encoder alone misses a target.  The target it misses is the LC-QuAD-NoA
twins, and most of that gap is entity twins whose two queries differ in one Q-id: no model that
reads ids only can tell them apart.  This script measures what a cross-encoder does on the
rest, before any of it goes into the package:

1. ``train``: a MiniLM-L6 cross-encoder (the shipped encoder's transformer, a new one-logit
   head), listwise: per row the gold text, its generator-like wrong variants and one random
   other query, softmax cross-entropy with the gold as the target.  Rows, texts and the
   development slice are stage 3's (:func:`kgqa_validator.model.trainset.build_generator_data`),
   so nothing evaluated is trained on.
2. ``measure``: on the sets ``evaluate`` builds (LC-QuAD same-shaped ``hard``, the NoA twins,
   the generator-like sets of the human development slice) hits@1 of the bi-encoder, of the
   cross-encoder, and of their mean rank; on the real LLM candidates the answer-F1 of each
   one's pick; and the seconds each takes per candidate.

    python benchmarks/cross_encoder_experiment.py train --data-dir ../shared/data --output build/cross
    python benchmarks/cross_encoder_experiment.py measure --data-dir ../shared/data --model build/cross \\
        --output-json benchmarks/results/cross_encoder.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

MAX_LENGTH = 128  # as the bi-encoder: the scoring texts fit
NEGATIVES = 3


def _rows(data_dir: Path) -> tuple[list[tuple[str, list[str]]], list[tuple[str, str, int]]]:
    from kgqa_validator.builtin.labels import load_labels
    from kgqa_validator.model.data import load_examples
    from kgqa_validator.model.recipes import RECIPES, V2_STAGES
    from kgqa_validator.model.trainset import build_generator_data
    from kgqa_validator.properties import shipped_properties

    stage = V2_STAGES[-1]
    recipe = RECIPES[stage.recipe]
    examples = [e for p in stage.data for e in load_examples(data_dir / p)]
    banned: set[str] = set()
    for p in stage.exclude:
        for e in load_examples(data_dir / p):
            banned.add(e.sparql)
            banned.update(e.questions)
    examples = [e for e in examples if e.sparql not in banned and not banned.intersection(e.questions)]
    labels: dict[str, str] = {}
    for p in stage.labels:
        labels.update(load_labels(data_dir / p))
    data = build_generator_data(examples, recipe, labels, shipped_properties())
    rng = random.Random(42)
    everything = [r.positive for r in data.rows + data.verbalised]
    groups = []
    for row in data.rows + data.verbalised:
        negatives = list(row.negatives)
        rng.shuffle(negatives)
        texts = [row.positive, *negatives[:NEGATIVES], rng.choice(everything)]
        groups.append((rng.choice(row.questions), list(dict.fromkeys(texts))))
    rng.shuffle(groups)
    return groups, data.calibration


def train(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kgqa_validator.model.encoder import SHIPPED_MODEL

    torch.manual_seed(42)
    groups, calibration = _rows(args.data_dir)
    source = args.base or SHIPPED_MODEL
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(source), num_labels=1, local_files_only=True, dtype=torch.float32)
    model.train()
    steps = min(args.steps, len(groups) // args.rows_per_step)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps))
    started = time.monotonic()
    running = None
    for step in range(steps):
        batch = groups[step * args.rows_per_step:(step + 1) * args.rows_per_step]
        questions = [q for q, texts in batch for _ in texts]
        texts = [t for _, ts in batch for t in ts]
        features = tokenizer(questions, texts, padding=True, truncation=True,
                             max_length=MAX_LENGTH, return_tensors="pt")
        logits = model(**features).logits.squeeze(-1)
        loss = torch.zeros(())
        at = 0
        for _, ts in batch:
            group = logits[at:at + len(ts)]
            loss = loss + torch.nn.functional.cross_entropy(group.unsqueeze(0), torch.tensor([0]))
            at += len(ts)
        loss = loss / len(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps} loss {running:.4f} {time.monotonic() - started:.0f}s",
                  flush=True)
    model.eval()
    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.output))
    tokenizer.save_pretrained(str(args.output))
    (args.output / "training.json").write_text(json.dumps({
        "steps": steps, "rows_per_step": args.rows_per_step, "lr": args.lr,
        "groups": len(groups), "negatives_per_row": NEGATIVES + 1, "base": str(source),
        "seconds": round(time.monotonic() - started, 1), "calibration_pairs": len(calibration),
    }, indent=2) + "\n")


class Cross:
    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32).eval()

    def scores(self, question: str, texts: list[str]) -> list[float]:
        out: list[float] = []
        with self.torch.inference_mode():
            for i in range(0, len(texts), 32):
                chunk = texts[i:i + 32]
                features = self.tokenizer([question] * len(chunk), chunk, padding=True,
                                          truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
                out += self.model(**features).logits.squeeze(-1).tolist()
        return out


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [0.0] * len(values)
    for r, i in enumerate(order):
        ranks[i] = float(r)
    return ranks


def _mean_rank(bi: list[float], cross: list[float]) -> list[float]:
    """Both stages' ranks summed (higher is better); the bi-encoder's score breaks a tie."""
    return [-(a + b) + 1e-3 * s for a, b, s in zip(_ranks(bi), _ranks(cross), bi, strict=True)]


def measure(args: argparse.Namespace) -> None:
    from kgqa_validator.model.data import load_examples
    from kgqa_validator.model.devsets import generator_sets, noa_twin_sets
    from kgqa_validator.model.encoder import Encoder
    from kgqa_validator.model.evaluate import candidate_sets
    from kgqa_validator.properties import shipped_properties
    from kgqa_validator.scoring_text import scoring_text

    properties = shipped_properties()
    plabels = properties.labels()
    encoder = Encoder(None, precision="fp32")
    cross = Cross(args.model)
    d = args.data_dir
    test = [e for e in load_examples(d / "lcquad2/test.json") if e.label == 1]
    sets: dict[str, list[tuple[str, list[str]]]] = {
        "hard": [(q, c) for q, c in candidate_sets(test, args.limit)],
    }
    twins = noa_twin_sets(d / "lc-quad-noa/train_balanced.json", args.limit)
    for kind in ("property", "entity"):
        sets[f"noa_twins_{kind}"] = [
            (t.question, [t.candidates[t.gold], t.candidates[1 - t.gold]])
            for t in twins if t.kinds[1 - t.gold] == kind]
    sets["generator"] = [
        (s.question, [s.candidates[s.gold], *[c for i, c in enumerate(s.candidates) if i != s.gold]])
        for s in generator_sets(d / "wikidata-human/train.jsonl", properties, args.limit)]
    result: dict[str, Any] = {"model": str(args.model), "limit": args.limit, "sets": {}}
    for name, data in sets.items():
        hits = {"bi": 0, "cross": 0, "mean_rank": 0}
        for question, candidates in data:  # gold first
            texts = [scoring_text(c, plabels) for c in candidates]
            bi = encoder.similarity(question, texts)
            cr = cross.scores(question, texts)
            both = _mean_rank(bi, cr)
            for key, values in (("bi", bi), ("cross", cr), ("mean_rank", both)):
                # The gold is first: a tie counts against it, or ties would favour the gold.
                hits[key] += all(values[0] > v for v in values[1:])
        result["sets"][name] = {k: round(v / len(data), 4) for k, v in hits.items()} | {"n": len(data)}
        print(name, result["sets"][name], flush=True)
    f1 = {"bi": [], "cross": [], "mean_rank": []}
    timing = {"bi": [], "cross": []}
    for line in (d / "llm-candidates/wwq_test_candidates.jsonl").read_text().splitlines():
        record = json.loads(line)
        candidates = record["candidates"]
        texts = [scoring_text(c["sparql"], plabels) for c in candidates]
        t0 = time.perf_counter()
        encoder.encode(texts)
        bi = encoder.similarity(record["question"], texts)
        t1 = time.perf_counter()
        cr = cross.scores(record["question"], texts)
        t2 = time.perf_counter()
        timing["bi"].append((t1 - t0) / len(texts))
        timing["cross"].append((t2 - t1) / len(texts))
        both = _mean_rank(bi, cr)
        for key, values in (("bi", bi), ("cross", cr), ("mean_rank", both)):
            pick = max(range(len(values)), key=lambda i: (values[i], -i))
            f1[key].append(candidates[pick]["answer_f1"])
    result["llm_candidates_answer_f1"] = {k: round(statistics.fmean(v), 4) for k, v in f1.items()}
    result["seconds_per_candidate_median"] = {
        k: round(statistics.median(v), 5) for k, v in timing.items()}
    print(result["llm_candidates_answer_f1"], result["seconds_per_candidate_median"])
    if args.output_json:
        args.output_json.write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data-dir", type=Path, required=True)
    t.add_argument("--output", type=Path, required=True)
    t.add_argument("--base", type=Path, help="transformer to start from (default: the shipped encoder)")
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--rows-per-step", type=int, default=4)
    t.add_argument("--lr", type=float, default=3e-5)
    m = sub.add_parser("measure")
    m.add_argument("--data-dir", type=Path, required=True)
    m.add_argument("--model", type=Path, required=True)
    m.add_argument("--limit", type=int, default=200)
    m.add_argument("--output-json", type=Path)
    args = parser.parse_args()
    train(args) if args.command == "train" else measure(args)


if __name__ == "__main__":
    main()
