"""``kgqa-validator check``: is each query valid SPARQL for the endpoint, and why not."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kgqa_validator.audit.jsonl_fields import add_field_options, check_rows, mapped_lines
from kgqa_validator.batch_io import open_input, open_output, read_bounded
from kgqa_validator.cli import jsonl
from kgqa_validator.cli.exits import EXIT_INVALID, EXIT_OK
from kgqa_validator.cli.options import add_batch, add_common, check_paths, make_validator, settings_from
from kgqa_validator.cli.render import format_diagnostic
from kgqa_validator.errors import DataFormatError, UsageError
from kgqa_validator.report_json import assessment_to_json, dumps

EXAMPLES = """\
examples:
  kgqa-validator check 'SELECT ?x WHERE { wd:Q42 wdt:P69 ?x }'
  echo 'ASK { wd:Q42 wdt:P31 wd:Q5 }' | kgqa-validator check - --json
  kgqa-validator check --jsonl queries.jsonl -o checked.jsonl --resume"""


def add_parser(sub: Any, **kwargs: Any) -> None:
    check = sub.add_parser(
        "check", help="validate SPARQL queries",
        description="Parse and lint SPARQL queries: syntax errors with their position, unbound "
                    "variables, unknown prefixes, Wikidata pitfalls. Nothing is sent anywhere.",
        epilog=EXAMPLES, **kwargs)
    check.add_argument("query", nargs="?", help="the query, or - to read it from standard input")
    add_batch(check, "a 'sparql' field")
    check.add_argument("--question", help="check the query's form against this question")
    check.add_argument("--workers", type=int, help="parser processes (default: one per core)")
    add_common(check)
    add_field_options(check, "query", "sparql")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    if args.jsonl:
        return _check_jsonl(args)
    if args.query is None:
        raise UsageError("check: give a QUERY, '-' for standard input, or --jsonl FILE")
    if args.output is not None or args.resume:
        raise UsageError("check: --output and --resume go with --jsonl FILE")
    if args.query == "-":
        text = read_bounded(sys.stdin, jsonl.MAX_LINE_CHARS)
    else:
        text = args.query
    settings = settings_from(args)
    validator = make_validator(args, settings)
    (assessment,) = validator.check([text], question=args.question or "")
    if args.json:
        print(dumps({"sparql": text, **assessment_to_json(assessment)}))
    else:
        for diagnostic in assessment.diagnostics:
            print("\n".join(format_diagnostic(text, diagnostic)))
        state = "valid" if assessment.valid else "invalid"
        print(f"{state} ({assessment.parsed.form.value} query)")
    return EXIT_OK if assessment.valid else EXIT_INVALID


def _check_jsonl(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    check_paths(args)
    workers = args.workers or max(1, os.cpu_count() or 1)
    settings = settings_from(args, parse_workers=workers)
    validator = make_validator(args, settings)
    source = open_input(args.jsonl)
    out, done = open_output(args.output, args.resume)
    # Lines kept by --resume count for the exit status as much as the new ones.
    all_valid = jsonl.finished_lines_valid(args.output) if done else True
    pending: list[tuple[int, dict[str, Any] | None, str]] = []

    def flush() -> None:
        nonlocal all_valid
        rows = [(n, r) for n, r, _ in pending if r is not None and isinstance(r.get("sparql"), str)]
        assessments = check_rows(validator, [r for _, r in rows]) if rows else []
        by_line = dict(zip((n for n, _ in rows), assessments, strict=True))
        for number, row, error in pending:
            if row is None:
                result = jsonl.input_error(number, error)
            elif number not in by_line:
                missing = jsonl.input_error(number, f"line {number} has no 'sparql' string")
                result = {**row, "valid": False, "diagnostics": missing["diagnostics"]}
            else:
                assessment = by_line[number]
                result = {**row, "valid": assessment.valid,
                          "diagnostics": [d.to_dict() for d in assessment.diagnostics]}
            all_valid = all_valid and bool(result["valid"])
            out.write(dumps(result) + "\n")
            out.flush()  # per line: a kill never loses a line that was already computed
        pending.clear()

    try:
        try:
            for item in mapped_lines(jsonl.json_lines(source, done), args, "sparql", done):
                pending.append(item)
                if len(pending) >= jsonl.CHUNK:
                    flush()
        except DataFormatError:
            flush()  # the lines read before the input turned out unreadable are still done
            raise
        flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_OK if all_valid else EXIT_INVALID
