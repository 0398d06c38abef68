"""``kgqa-validator audit DATASET --out DIR``: the command's options and its run.

The CLI (:mod:`kgqa_validator.cli.main`) only registers :func:`add_parser` and calls
:func:`run`; this module prints the closing summary (stdout) and the progress bar (stderr),
like the rest of the command line.
Exit status: 0 no pair flagged, 1 some pairs flagged, 2 usage or infrastructure error.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

from kgqa_validator.audit import resume
from kgqa_validator.audit.auditor import AuditOptions, Auditor
from kgqa_validator.audit.groups import compact, compute_groups
from kgqa_validator.audit.output import summarise, write_json, write_rows
from kgqa_validator.audit.progress import Progress
from kgqa_validator.audit.readers import FORMATS, FieldMap, detect_format, read_records
from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError, DataFormatError
from kgqa_validator.types import Precision

EXIT_CLEAN, EXIT_FLAGGED = 0, 1


AUDIT_EXAMPLES = """\
examples:
  kgqa-validator audit lcquad2_test.json -o audit/ --labels labels.json
  kgqa-validator audit pairs.jsonl -o audit/ --no-score --resume
  kgqa-validator audit qald.json --lang de -o audit/ --engine ray"""


def add_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None],
               add_endpoint: Callable[[argparse.ArgumentParser], None],
               **kwargs: Any) -> argparse.ArgumentParser:
    """Register ``audit`` on an argparse subparsers object; ``add_common``/``add_endpoint``
    are the CLI's shared options (mode, prefixes, plugins, parse timeout; endpoint)."""
    p = sub.add_parser(
        "audit", help="find the broken and mismatched pairs of a question/query dataset",
        description="Check every question/query pair of a dataset: invalid queries, questions "
                    "and queries that do not match (low score, paraphrase mismatch), and with "
                    "--execute queries that fail or return nothing. Writes pairs.jsonl, "
                    "summary.json and an HTML report; --resume continues after a kill.",
        epilog=AUDIT_EXAMPLES, **kwargs)
    p.add_argument("dataset", type=Path, help="LC-QuAD 2.0 JSON, QALD JSON, JSON Lines or CSV")
    p.add_argument("--out", "-o", required=True, type=Path, metavar="DIR",
                   help="writes pairs.jsonl, summary.json and report.html here")
    p.add_argument("--format", choices=FORMATS, help="input format (default: detected)")
    p.add_argument("--lang", default="en", help="QALD: the question language (default en)")
    p.add_argument("--question-field", metavar="NAME", help="field holding the question")
    p.add_argument("--sparql-field", metavar="NAME",
                   help="field holding the query (default: sparql, sparql_wikidata or query)")
    p.add_argument("--id-field", metavar="NAME",
                   help="field holding the record id (default: uid/id; the line number for JSONL/CSV)")
    p.add_argument("--paraphrase-field", metavar="NAME",
                   help="field holding a paraphrase (default: paraphrased_question)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted audit in --out (same input and options)")
    p.add_argument("--force", action="store_true", help="overwrite an earlier audit in --out")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (this machine, all cores) or ray (an actor pool; pip install "
                        "'kgqa-validator[ray]')")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="Ray cluster to join (auto, ray://HOST:10001); default: a local cluster")
    p.add_argument("--ray-actors", type=int, metavar="N", help="actors (default: the cluster's CPUs)")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per batch (default 256)")
    p.add_argument("--workers", type=int, help="parser processes, local engine (default: one per core)")
    p.add_argument("--no-score", action="store_true",
                   help="skip the model (no low_score/paraphrase_mismatch; much faster)")
    p.add_argument("--report-limit", type=int, default=5000,
                   help="flagged pairs in report.html, lowest score first (default 5000)")
    p.add_argument("--labels", action="append", default=[], type=Path, metavar="FILE",
                   help='JSON labels file {"Q42": "Douglas Adams"}: queries are scored verbalised')
    p.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    p.add_argument("--precision", choices=[x.value for x in Precision],
                   help="encoder precision (default auto)")
    p.add_argument("--threshold", type=float, help="low_score below this (default: the model's)")
    add_common(p)
    p.add_argument("--execute", action="store_true",
                   help="run every valid query (execution_error, empty_result, answer_mismatch)")
    p.add_argument("--check-ids", action="store_true", help="unknown_id for ids the endpoint lacks")
    add_endpoint(p)
    p.set_defaults(func=run)
    return p


def _settings(args: argparse.Namespace, workers: int) -> Settings:
    prefixes = {}
    for item in args.prefix:
        name, sep, iri = item.partition("=")
        if not sep or not iri:
            raise ConfigurationError(f"--prefix {item!r}: expected NAME=IRI")
        prefixes[name.strip().rstrip(":")] = iri.strip().strip("<>")
    for value, option in ((args.timeout_parse, "--timeout-parse"), (args.timeout, "--timeout")):
        if not (math.isfinite(value) and value > 0):
            raise ConfigurationError(f"{option} must be a positive number of seconds")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise ConfigurationError("--threshold must be a finite number")
    if args.executor == "embedded" and args.data is None:
        raise ConfigurationError("--executor embedded needs --data FILE")
    settings = Settings.for_mode(args.mode, prefixes)
    settings = replace(
        settings, parse_timeout_s=args.timeout_parse, parse_workers=workers,
        labels_files=tuple(args.labels), model_path=args.model, threshold=args.threshold,
        precision=args.precision or settings.precision, execute=args.execute,
        check_unknown_ids=args.check_ids, executor=args.executor, data_file=args.data,
        contact=args.contact, timeout_s=args.timeout, cache_dir=args.cache_dir,
        cache_ttl_s=max(0.0, args.cache_ttl) if not math.isnan(args.cache_ttl) else 0.0,
        # Answers are compared with the gold answers as sets: keep them all.
        max_rows=100_000 if args.execute else settings.max_rows)
    if args.endpoint:
        settings = replace(settings, endpoint=args.endpoint)
    if settings.execute or settings.check_unknown_ids:
        from kgqa_validator.execution import check_settings

        check_settings(settings)
    return settings


def _fingerprint_options(args: argparse.Namespace, fmt: str, fields: FieldMap) -> dict[str, Any]:
    """Every option that changes a row (not --engine, --workers, --quiet: they must not)."""
    keys = ("lang", "question_field", "sparql_field", "id_field", "paraphrase_field", "batch_size",
            "no_score", "labels", "model", "precision", "threshold", "mode", "prefix",
            "no_plugins", "block", "timeout_parse", "execute", "check_ids", "endpoint",
            "executor", "data")
    return {"format": fmt, **{k: str(v) if isinstance(v, Path) else
                              [str(x) for x in v] if isinstance(v, list) else v
                              for k, v in vars(args).items() if k in keys}}


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or (args.workers is not None and args.workers < 1) \
            or (args.ray_actors is not None and args.ray_actors < 1):
        raise ConfigurationError("--batch-size, --workers and --ray-actors must be at least 1")
    if not args.dataset.is_file():
        raise DataFormatError(f"{args.dataset}: no such file")
    if args.resume and args.force:
        raise ConfigurationError("--resume continues an audit, --force starts over: give one")
    if args.engine == "ray":
        from kgqa_validator.audit.engine_ray import import_ray

        import_ray()  # say how to install it now, not after pass 1
    fmt = args.format or detect_format(args.dataset)
    fields = FieldMap(args.question_field, args.sparql_field, args.id_field,
                      args.paraphrase_field, args.lang)
    settings = _settings(args, args.workers or max(1, os.cpu_count() or 1))
    for path in settings.labels_files:
        from kgqa_validator.label_files import load_labels

        load_labels(path)  # a broken labels file fails now
    options = AuditOptions(settings, False if args.no_plugins else None, tuple(args.block),
                           not args.no_score, args.batch_size)
    run_info = resume.fingerprint(args.dataset, _fingerprint_options(args, fmt, fields))
    done = resume.start(args.out, run_info, args.resume, args.force)
    stream = None if args.quiet else sys.stderr
    started = time.monotonic()

    # Pass 1: the duplicate groups (recomputed on --resume: cheap, and it makes the rows
    # written after the resume exactly those of an uninterrupted run).
    scan = Progress(stream, None, "audit pass 1/2 (groups)", "records")
    groups = compact(compute_groups(read_records(args.dataset, fmt, fields), scan.update))
    scan.close()

    # Pass 2: whole batches from the batch holding the first missing pair (a batch is scored
    # as a unit, so its scores do not depend on where the interruption fell).
    first = (done // args.batch_size) * args.batch_size
    records = islice(read_records(args.dataset, fmt, fields), first, None)
    bar = Progress(stream, groups.total, "audit pass 2/2", initial=done)
    pairs_path = args.out / resume.PAIRS_FILE
    with open(pairs_path, "a", encoding="utf-8") as out:
        def sink(rows: list[dict[str, Any]]) -> None:
            bar.update(write_rows(out, rows, done))

        try:
            if args.engine == "ray":
                from kgqa_validator.audit.engine_ray import run_ray

                run_ray(options, groups, records, sink, address=args.ray_address,
                        actors=args.ray_actors)
            else:
                from kgqa_validator.audit.engine_local import run_local

                run_local(Auditor(options, groups), records, sink)
        finally:
            bar.close()
    elapsed = time.monotonic() - started
    return _finish(args, fmt, groups.total - done, elapsed, options)


def _finish(args: argparse.Namespace, fmt: str, new_pairs: int, elapsed: float,
            options: AuditOptions) -> int:
    from kgqa_validator.audit.report_html import write_report

    summary, flagged = summarise(args.out / resume.PAIRS_FILE, args.report_limit)
    summary = {"dataset": str(args.dataset), "format": fmt, "engine": args.engine,
               "scoring": options.score, **summary,
               "run": {"pairs_this_run": new_pairs, "seconds": round(elapsed, 1),
                       "pairs_per_s": round(new_pairs / elapsed, 1) if elapsed > 0 else None}}
    write_json(args.out / "summary.json", summary)
    write_report(args.out / "report.html", summary, flagged)
    print(f"{summary['pairs']:,} pairs, {summary['flagged']:,} flagged -> {args.out}/"
          "{pairs.jsonl,summary.json,report.html}")
    for code, info in summary["reasons"].items():
        print(f"  {info['count']:>7,}  {code}")
    return EXIT_FLAGGED if summary["flagged"] else EXIT_CLEAN
