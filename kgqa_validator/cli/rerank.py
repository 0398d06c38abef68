"""``kgqa-validator rerank`` (alias ``validate``): score, rank and reject candidates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kgqa_validator.audit.jsonl_fields import add_field_options, mapped_lines
from kgqa_validator.batch_io import open_input, open_output
from kgqa_validator.cli import jsonl
from kgqa_validator.cli.exits import EXIT_INVALID, EXIT_OK
from kgqa_validator.cli.options import (
    add_batch,
    add_common,
    add_scoring,
    check_paths,
    make_validator,
    settings_from,
)
from kgqa_validator.cli.render import answer_ids, print_report
from kgqa_validator.errors import UsageError
from kgqa_validator.report_json import dumps, report_to_json

EXAMPLES = """\
examples:
  kgqa-validator rerank -q 'Where was Douglas Adams educated?' \\
      'SELECT ?x WHERE { wd:Q42 wdt:P69 ?x }' 'SELECT ?x WHERE { wd:Q42 wdt:P19 ?x }'
  kgqa-validator rerank -q '...' --candidates generated.txt --labels labels.json --json
  kgqa-validator rerank --jsonl requests.jsonl -o ranked.jsonl --resume
  kgqa-validator rerank -q '...' --candidates c.txt --execute --contact me@example.org"""


def add_parser(sub: Any, name: str, **kwargs: Any) -> None:
    rerank = sub.add_parser(
        name, help="score, rank and reject candidates for a question",
        description="Validate each candidate query, score it against the question with the "
                    "shipped encoder (and the candidates' agreement), rank them, and reject "
                    "those below the threshold. Optionally run the best on an endpoint.",
        epilog=EXAMPLES.replace("rerank", name), **kwargs)
    rerank.add_argument("candidates", nargs="*", help="candidate queries")
    rerank.add_argument("--question", "-q", help="the user's question")
    rerank.add_argument("--candidates", dest="candidates_file", type=Path, metavar="FILE",
                        help="one candidate per line, or a JSON array of strings")
    add_batch(rerank, "{\"question\", \"candidates\"}")
    add_common(rerank)
    add_scoring(rerank)
    add_field_options(rerank, "candidates", "candidates")
    rerank.set_defaults(func=cmd_rerank)


def cmd_rerank(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.jsonl:
        check_paths(args)
    elif args.output is not None or args.resume:
        raise UsageError(f"{args.command}: --output and --resume go with --jsonl FILE")
    validator = make_validator(args, settings)
    # Fail now, in one line, on a broken labels file or an endpoint that cannot work
    # (before the model loads, and not at the first candidate).
    validator.check_setup()
    if args.jsonl:
        return _rerank_jsonl(args, validator)
    if args.question is None:
        raise UsageError("rerank: give --question TEXT (or --jsonl FILE)")
    candidates = list(args.candidates)
    if args.candidates_file:
        candidates.extend(jsonl.read_candidates(args.candidates_file))
    if not candidates:
        raise UsageError("rerank: no candidates (give them as arguments or --candidates FILE)")
    if len(candidates) > settings.max_candidates:
        raise UsageError(f"rerank: {len(candidates):,} candidates for one question; at most "
                         f"{settings.max_candidates:,} (--max-candidates)")
    report = validator.validate(args.question, candidates)
    if args.json:
        print(dumps(report_to_json(report)))
    else:
        # Answers read better with names: from the label files, and from the endpoint or the
        # data file when execution (which turns endpoint labels on) was asked for.
        ids = answer_ids(report)
        print_report(report, validator.labels(ids) if ids else None)
    return EXIT_OK if report.best is not None else EXIT_INVALID


def _bad_row(row: dict[str, Any], number: int, message: str) -> dict[str, Any]:
    # Every output line has a ranking, empty for a line that could not be read.
    bad = jsonl.input_error(number, message)
    return {**row, "ranking": [], "valid": False, "diagnostics": bad["diagnostics"]}


def _rerank_jsonl(args: argparse.Namespace, validator: Any) -> int:
    source = open_input(args.jsonl)
    out, done = open_output(args.output, args.resume)
    # Lines kept by --resume count for the exit status as much as the new ones.
    any_accepted = jsonl.finished_lines_accepted(args.output) if done else True
    limit = validator.settings.max_candidates
    try:
        for number, row, error in mapped_lines(jsonl.json_lines(source, done), args, "candidates",
                                               done):
            if row is None:
                result = {**jsonl.input_error(number, error), "ranking": []}
                any_accepted = False
            elif not isinstance(row.get("question"), str) or not isinstance(
                    row.get("candidates"), list) or not all(
                    isinstance(c, str) for c in row["candidates"]):
                result = _bad_row(row, number, f"line {number}: expected 'question' (string) and "
                                               "'candidates' (list of strings)")
                any_accepted = False
            elif len(row["candidates"]) > limit:
                result = _bad_row(row, number, f"line {number}: {len(row['candidates']):,} "
                                               f"candidates; at most {limit:,} per question "
                                               "(--max-candidates)")
                any_accepted = False
            else:
                report = validator.validate(row["question"], row["candidates"])
                data = report_to_json(report)
                result = {**row, "ranking": data["ranking"],
                          "question_diagnostics": data["question_diagnostics"]}
                if data["notes"]:
                    result["notes"] = data["notes"]
                any_accepted = any_accepted and report.best is not None
            out.write(dumps(result) + "\n")
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_OK if any_accepted else EXIT_INVALID
