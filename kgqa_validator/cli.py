"""The ``kgqa-validator`` command line: the only module that prints.

Exit status: 0 everything valid/accepted, 1 something invalid, 2 usage or infrastructure
error (one line on stderr, never a traceback), 130 interrupted (finished output kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, NoReturn

from kgqa_validator import __version__
from kgqa_validator.audit.jsonl_fields import add_field_options, check_rows, mapped_lines
from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError, DataFormatError, KgqaValidatorError
from kgqa_validator.model.precision import PRECISIONS
from kgqa_validator.report_json import assessment_to_json as _assessment_json
from kgqa_validator.report_json import dumps as _dump
from kgqa_validator.report_json import report_to_json
from kgqa_validator.types import Diagnostic, Mode, Report, Severity

EXIT_OK, EXIT_INVALID, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
CHUNK = 256  # check --jsonl: lines parsed in parallel, then written (each flushed as written)
# One --jsonl record at most (a 10 MB query still fits, and is then diagnosed as too large);
# past this a line is reported and skipped, and past four times as many more characters
# without a line end the input is not JSON Lines at all (/dev/zero, a binary file): the run stops.
MAX_LINE_CHARS = 32 * 1024 * 1024


class UsageError(KgqaValidatorError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


# -- output helpers -------------------------------------------------------------------------


def _caret_lines(text: str, diagnostic: Diagnostic) -> list[str]:
    if diagnostic.span is None:
        return []
    # Lines as the diagnostics count them: split at \n only (str.splitlines would also split
    # at \r, \x0c, U+2028 ..., which may sit inside a string literal).
    lines = text.split("\n")
    index = diagnostic.span.line - 1
    if not 0 <= index < len(lines):
        return []
    source = lines[index]
    column = diagnostic.span.column - 1
    # Show at most 100 characters around the column so a 10 MB one-liner stays readable.
    start = max(0, column - 60)
    snippet = _printable(source[start:start + 100].expandtabs(1))
    prefix = "…" if start else ""
    return [f"    {prefix}{snippet}", "    " + " " * (len(prefix) + column - start) + "^"]


_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def _printable(text: str) -> str:
    """``text`` for a terminal line, one column per character so that the caret lines up:
    lone surrogates (undecodable input bytes) as U+FFFD, control characters and line
    separators as spaces."""
    return _CONTROLS.sub(" ", _SURROGATES.sub("\ufffd", text))


def format_diagnostic(text: str, diagnostic: Diagnostic, name: str = "query") -> list[str]:
    where = f"{name}:{diagnostic.line}:{diagnostic.column}" if diagnostic.span else name
    head = f"{where}: {diagnostic.severity.value} [{diagnostic.code}] {diagnostic.message}"
    return [head, *_caret_lines(text, diagnostic)]


# -- settings from arguments ----------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=[m.value for m in Mode], default="wikidata",
                        help="wikidata: the query service's prefixes and dialect (default); "
                             "generic: any SPARQL 1.1 endpoint")
    parser.add_argument("--prefix", action="append", default=[], metavar="NAME=IRI",
                        help="declare a prefix for every query (repeatable)")
    parser.add_argument("--no-plugins", action="store_true",
                        help="do not load installed plugins (built-ins only)")
    parser.add_argument("--block", action="append", default=[], metavar="PLUGIN",
                        help="do not register this plugin (repeatable)")
    parser.add_argument("--timeout-parse", type=float, default=1.5, metavar="SECONDS",
                        help="cut off a parse after this long (default 1.5)")


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help="SPARQL endpoint URL (default: Wikidata)")
    parser.add_argument("--executor", choices=["sparqlwrapper", "embedded"],
                        help="how to execute (default: embedded with --data, else sparqlwrapper)")
    parser.add_argument("--data", type=Path, metavar="FILE",
                        help="local RDF file (.ttl, .nt, .nq, .trig, .rdf) for the embedded executor")
    parser.add_argument("--contact", default=os.environ.get("KGQA_VALIDATOR_CONTACT"),
                        help="contact (e-mail or URL) for the User-Agent; required by Wikidata "
                             "(default: $KGQA_VALIDATOR_CONTACT)")
    parser.add_argument("--timeout", type=float, default=65.0,
                        help="endpoint timeout, seconds (default 65)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="where answers and labels are cached (default: the user cache dir)")
    parser.add_argument("--cache-ttl", type=float, default=300.0, metavar="SECONDS",
                        help="answer identical queries from the cache this long (default 300; "
                             "0: off)")


def _add_scoring(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", action="append", default=[], type=Path, metavar="FILE",
                        help='JSON labels file {"Q42": "Douglas Adams"} (repeatable)')
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="how the encoder computes (default auto: bf16 on a CPU with native "
                             "bf16, else fp32; int8 is faster but less accurate; see the README)")
    parser.add_argument("--threshold", type=float,
                        help="rejection threshold (default: the model's calibrated one)")
    parser.add_argument("--max-candidates", type=int, default=1000, metavar="N",
                        help="most candidates for one question (default 1000); a --jsonl line "
                             "with more is answered with invalid_input")
    parser.add_argument("--execute", action="store_true",
                        help="run the best candidates (also fetches labels from the endpoint)")
    parser.add_argument("--endpoint-labels", action="store_true",
                        help="fetch English labels for the ids from the endpoint")
    parser.add_argument("--check-ids", action="store_true",
                        help="report ids the endpoint does not have (unknown_id, an error)")
    parser.add_argument("--no-consensus", action="store_true",
                        help="rank by the encoder alone, not also by the candidates' agreement")
    parser.add_argument("--consensus-weight", type=float, metavar="W",
                        help="weight of the candidates' agreement against the encoder, 0-1 "
                             "(default 0.5; used with 3 or more valid candidates)")
    parser.add_argument("--no-property-table", action="store_true",
                        help="do not use the shipped property table (labels, datatypes, unknown ids)")
    parser.add_argument("--no-demote", action="store_true",
                        help="rank form/datatype mismatches by score like the rest")
    _add_endpoint(parser)


def _prefixes(items: Sequence[str]) -> dict[str, str]:
    result = {}
    for item in items:
        name, sep, iri = item.partition("=")
        if not sep or not iri:
            raise UsageError(f"--prefix {item!r}: expected NAME=IRI")
        result[name.strip().rstrip(":")] = iri.strip().strip("<>")
    return result


def _positive(value: float | None, option: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{option} must be a positive number of seconds, not {value}")


def _endpoint_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    if args.executor == "embedded" and args.data is None:
        raise UsageError("--executor embedded needs --data FILE")
    _positive(args.timeout, "--timeout")
    if math.isnan(args.cache_ttl):
        raise UsageError("--cache-ttl must be a number of seconds")
    settings = replace(settings, executor=args.executor, data_file=args.data,
                       contact=args.contact, timeout_s=args.timeout, cache_dir=args.cache_dir,
                       cache_ttl_s=max(0.0, args.cache_ttl))
    if args.endpoint:
        settings = replace(settings, endpoint=args.endpoint)
    return settings


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    _positive(args.timeout_parse, "--timeout-parse")
    if getattr(args, "max_candidates", 1) < 1:
        raise UsageError("--max-candidates must be at least 1")
    if getattr(args, "threshold", None) is not None and not math.isfinite(args.threshold):
        raise UsageError(f"--threshold must be a finite number, not {args.threshold}")
    settings = Settings.for_mode(args.mode, _prefixes(args.prefix))
    settings = replace(settings, parse_timeout_s=args.timeout_parse, **extra)
    if hasattr(args, "execute"):  # rerank / validate
        settings = replace(
            settings,
            labels_files=tuple(args.labels),
            model_path=args.model,
            threshold=args.threshold,
            execute=args.execute,
            precision=args.precision or settings.precision,
            endpoint_labels=args.endpoint_labels,
            check_unknown_ids=args.check_ids,
            consensus=not args.no_consensus,
            max_candidates=args.max_candidates,
            property_table=not args.no_property_table,
            demote_mismatches=not args.no_demote,
        )
        if args.consensus_weight is not None:
            if not 0.0 <= args.consensus_weight <= 1.0:
                raise UsageError(f"--consensus-weight must be between 0 and 1, not "
                                 f"{args.consensus_weight}")
            settings = replace(settings, consensus_weight=args.consensus_weight)
        settings = _endpoint_settings(args, settings)
    return settings


def _check_endpoint(settings: Settings) -> None:
    """Fail now, in one line, on what would fail at the first request (before the model loads)."""
    from kgqa_validator.builtin.endpoint_labels import active
    from kgqa_validator.execution import check_settings

    if settings.execute or active(settings):
        check_settings(settings)


def _validator(args: argparse.Namespace, settings: Settings) -> Any:
    from kgqa_validator.validator import Validator

    return Validator(settings, autoload=False if args.no_plugins else None, block=args.block)


# -- input helpers --------------------------------------------------------------------------


def _open_input(path: str) -> IO[str]:
    from kgqa_validator.batch_io import open_input

    return open_input(path)


def _check_paths(args: argparse.Namespace) -> None:
    """``--output``/``--resume`` options that would lose work are usage errors."""
    output = args.output if args.output not in (None, "-") else None
    if args.resume and output is None:
        raise UsageError("--resume needs --output FILE (the file to continue)")
    if output is not None and args.jsonl not in (None, "-") and os.path.exists(output):
        try:
            same = os.path.samefile(args.jsonl, output)
        except OSError:
            same = False
        if same:
            raise UsageError(f"--output {output} is the input file: it would be overwritten "
                             "before it is read")


def _open_output(path: str | None, resume: bool) -> tuple[IO[str], int]:
    """Output stream and how many finished lines it already holds (``--resume``)."""
    from kgqa_validator.batch_io import open_output

    return open_output(path, resume)


def _finished_lines_valid(path: str) -> bool:
    """Whether every finished line of a ``--resume``d output says ``"valid": true``."""
    with open(path, encoding="utf-8", errors="replace") as finished:
        for line in finished:
            try:
                if json.loads(line).get("valid") is not True:
                    return False
            except (json.JSONDecodeError, AttributeError, RecursionError):
                return False
    return True


def _finished_lines_accepted(path: str) -> bool:
    """Whether every finished line of a ``--resume``d rerank output accepted a candidate."""
    with open(path, encoding="utf-8", errors="replace") as finished:
        for line in finished:
            try:
                ranking = json.loads(line).get("ranking")
            except (json.JSONDecodeError, AttributeError, RecursionError):
                return False
            if not isinstance(ranking, list) or not any(
                    isinstance(r, dict) and r.get("verdict") == "accepted" for r in ranking):
                return False
    return True


def _bounded_lines(stream: IO[str]) -> Iterator[str | None]:
    """The stream's lines, ``None`` for a line over ``MAX_LINE_CHARS`` (its rest is skipped)."""
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield line
            continue
        yield None
        skipped = 0
        while not line.endswith("\n"):
            line = stream.readline(1 << 20)
            if not line:
                return
            skipped += len(line)
            if skipped > 4 * MAX_LINE_CHARS and not line.endswith("\n"):
                raise DataFormatError(
                    f"no line end within {MAX_LINE_CHARS + skipped:,} characters: the input "
                    "is not JSON Lines (the lines before it are done)")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; echoed back they would make the output unreadable.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as inf, and would be written as Infinity
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def _json_lines(stream: IO[str], skip: int) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """``(line number, row or None, error)`` for each non-blank line after the first ``skip``
    non-blank ones (each wrote one output line, which is what ``--resume`` counts)."""
    records = 0
    for number, line in enumerate(_bounded_lines(stream), 1):
        if line is not None and not line.strip():
            continue
        records += 1
        if records <= skip:
            continue
        if line is None:
            yield number, None, f"line {number} is longer than {MAX_LINE_CHARS >> 20} MiB"
            continue
        try:
            row = json.loads(line, parse_constant=_reject_constant, parse_float=_finite_float)
        except ValueError as exc:  # JSONDecodeError, or what _reject_constant/_finite_float say
            yield number, None, f"line {number} is not JSON ({getattr(exc, 'msg', exc)})"
            continue
        except RecursionError:
            yield number, None, f"line {number} is JSON nested too deeply to read"
            continue
        if not isinstance(row, dict):
            yield number, None, f"line {number} is not a JSON object"
            continue
        yield number, row, ""


def _input_error(number: int, message: str) -> dict[str, Any]:
    return {"line": number, "valid": False, "diagnostics": [{
        "code": "invalid_input", "severity": "error", "message": message,
        "line": None, "column": None, "excerpt": "", "producer": "cli"}]}


# -- commands -------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    if args.jsonl:
        return _check_jsonl(args)
    if args.query is None:
        raise UsageError("check: give a QUERY, '-' for standard input, or --jsonl FILE")
    if args.output is not None or args.resume:
        raise UsageError("check: --output and --resume go with --jsonl FILE")
    if args.query == "-":
        from kgqa_validator.batch_io import read_bounded

        text = read_bounded(sys.stdin, MAX_LINE_CHARS)
    else:
        text = args.query
    settings = _settings(args)
    validator = _validator(args, settings)
    (assessment,) = validator.check([text], question=args.question or "")
    if args.json:
        print(_dump({"sparql": text, **_assessment_json(assessment)}))
    else:
        for diagnostic in assessment.diagnostics:
            print("\n".join(format_diagnostic(text, diagnostic)))
        state = "valid" if assessment.valid else "invalid"
        print(f"{state} ({assessment.parsed.form.value} query)")
    return EXIT_OK if assessment.valid else EXIT_INVALID


def _check_jsonl(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    _check_paths(args)
    workers = args.workers or max(1, os.cpu_count() or 1)
    settings = _settings(args, parse_workers=workers)
    validator = _validator(args, settings)
    source = _open_input(args.jsonl)
    out, done = _open_output(args.output, args.resume)
    # Lines kept by --resume count for the exit status as much as the new ones.
    all_valid = _finished_lines_valid(args.output) if done else True
    pending: list[tuple[int, dict[str, Any] | None, str]] = []

    def flush() -> None:
        nonlocal all_valid
        rows = [(n, r) for n, r, _ in pending if r is not None and isinstance(r.get("sparql"), str)]
        assessments = check_rows(validator, [r for _, r in rows]) if rows else []
        by_line = dict(zip((n for n, _ in rows), assessments, strict=True))
        for number, row, error in pending:
            if row is None:
                result = _input_error(number, error)
            elif number not in by_line:
                missing = _input_error(number, f"line {number} has no 'sparql' string")
                result = {**row, "valid": False, "diagnostics": missing["diagnostics"]}
            else:
                assessment = by_line[number]
                result = {**row, "valid": assessment.valid,
                          "diagnostics": [d.to_dict() for d in assessment.diagnostics]}
            all_valid = all_valid and bool(result["valid"])
            out.write(_dump(result) + "\n")
            out.flush()  # per line: a kill never loses a line that was already computed
        pending.clear()

    try:
        try:
            for item in mapped_lines(_json_lines(source, done), args, "sparql", done):
                pending.append(item)
                if len(pending) >= CHUNK:
                    flush()
        except DataFormatError:
            flush()  # the lines read before the input turned out unreadable are still done
            raise
        flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_OK if all_valid else EXIT_INVALID


_ENTITY = re.compile(r"^http://www\.wikidata\.org/entity/([QPL][1-9][0-9]*)$")


def _answer_ids(report: Report) -> list[str]:
    """Wikidata ids among the answer values that the text report shows."""
    ids: list[str] = []
    for verdict in report.verdicts:
        for row in verdict.execution.rows[:3] if verdict.execution is not None else ():
            ids.extend(m.group(1) for v in row.values() if (m := _ENTITY.match(v)))
    return list(dict.fromkeys(ids))


def _print_report(report: Report, labels: dict[str, str] | None = None) -> None:
    labels = labels or {}
    for diagnostic in report.question_diagnostics:
        print(f"question: {diagnostic.severity.value} [{diagnostic.code}] {diagnostic.message}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{'rank':>4}  {'verdict':<8}  {'score':>6}  {'valid':<5}  query")
    for verdict in report.verdicts:
        score = "-" if verdict.score is None else f"{verdict.score:.3f}"
        query = " ".join(verdict.candidate.sparql.split())
        if len(query) > 100:
            query = query[:99] + "…"
        print(f"{verdict.rank:>4}  {verdict.decision.value:<8}  {score:>6}  "
              f"{'yes' if verdict.valid else 'no':<5}  {query}")
        for diagnostic in verdict.diagnostics:
            if diagnostic.severity is not Severity.INFO:
                where = f"{diagnostic.line}:{diagnostic.column} " if diagnostic.span else ""
                print(f"{'':>8}{where}{diagnostic.severity.value} [{diagnostic.code}] "
                      f"{diagnostic.message}")
        if verdict.execution is not None:
            ex = verdict.execution
            amount = ex.boolean if ex.boolean is not None else ex.row_count
            if ex.status == "refused":  # never sent: its diagnostic above says why
                print(f"{'':>8}not executed (refused before any request)")
                continue
            shown = "" if amount is None else f" ({amount})"
            print(f"{'':>8}executed: {ex.status}{shown} in {ex.elapsed_s:.2f}s")
            for row in ex.rows[:3]:
                print(f"{'':>10}" + "  ".join(f"{k}={_compact(v, labels)}"
                                              for k, v in row.items()))
            if ex.row_count is not None and ex.row_count > 3:
                print(f"{'':>10}... {ex.row_count - 3} more")


def _compact(value: str, labels: dict[str, str] | None = None) -> str:
    """``wd:Q42`` for ``http://www.wikidata.org/entity/Q42`` (the longest matching prefix),
    followed by its label when one is known: ``wd:Q42 (Douglas Adams)``."""
    from kgqa_validator.prefixes import WIKIDATA_PREFIXES

    match = _ENTITY.match(value)
    if match and labels and match.group(1) in labels:
        return f"{_compact(value)} ({_printable(short_label(labels[match.group(1)]))})"

    best = max((p for p in WIKIDATA_PREFIXES.items() if value.startswith(p[1])),
               key=lambda p: len(p[1]), default=None)
    if best is None:
        return value if len(value) <= 60 else value[:59] + "…"
    return f"{best[0]}:{value[len(best[1]):]}"


def short_label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:59] + "…"


def _read_candidates(path: Path) -> list[str]:
    """One query per line, or a JSON array of strings."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: invalid JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise DataFormatError(f"{path}: JSON nested too deeply to read") from exc
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise DataFormatError(f"{path}: expected a JSON array of query strings")
        return data
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_rerank(args: argparse.Namespace) -> int:
    from kgqa_validator.builtin.labels import load_labels

    settings = _settings(args)
    if args.jsonl:
        _check_paths(args)
    elif args.output is not None or args.resume:
        raise UsageError(f"{args.command}: --output and --resume go with --jsonl FILE")
    for path in settings.labels_files:
        load_labels(path)  # a broken labels file fails now, not at the first candidate
    _check_endpoint(settings)
    validator = _validator(args, settings)
    if args.jsonl:
        return _rerank_jsonl(args, validator)
    if args.question is None:
        raise UsageError("rerank: give --question TEXT (or --jsonl FILE)")
    candidates = list(args.candidates)
    if args.candidates_file:
        candidates.extend(_read_candidates(args.candidates_file))
    if not candidates:
        raise UsageError("rerank: no candidates (give them as arguments or --candidates FILE)")
    if len(candidates) > settings.max_candidates:
        raise UsageError(f"rerank: {len(candidates):,} candidates for one question; at most "
                         f"{settings.max_candidates:,} (--max-candidates)")
    report = validator.validate(args.question, candidates)
    if args.json:
        print(_dump(report_to_json(report)))
    else:
        # Answers read better with names: from the label files, and from the endpoint or the
        # data file when execution (which turns endpoint labels on) was asked for.
        ids = _answer_ids(report)
        _print_report(report, validator.labels(ids) if ids else None)
    return EXIT_OK if report.best is not None else EXIT_INVALID


def _rerank_jsonl(args: argparse.Namespace, validator: Any) -> int:
    source = _open_input(args.jsonl)
    out, done = _open_output(args.output, args.resume)
    # Lines kept by --resume count for the exit status as much as the new ones.
    any_accepted = _finished_lines_accepted(args.output) if done else True
    try:
        for number, row, error in mapped_lines(_json_lines(source, done), args, "candidates", done):
            if row is None:
                result = {**_input_error(number, error), "ranking": []}
                any_accepted = False
            elif not isinstance(row.get("question"), str) or not isinstance(
                    row.get("candidates"), list) or not all(
                    isinstance(c, str) for c in row["candidates"]):
                bad = _input_error(number, f"line {number}: expected 'question' (string) and "
                                           "'candidates' (list of strings)")
                # Every output line has a ranking, empty for a line that could not be read.
                result = {**row, "ranking": [], "valid": False, "diagnostics": bad["diagnostics"]}
                any_accepted = False
            elif len(row["candidates"]) > validator.settings.max_candidates:
                limit = validator.settings.max_candidates
                bad = _input_error(number, f"line {number}: {len(row['candidates']):,} "
                                           f"candidates; at most {limit:,} per question "
                                           "(--max-candidates)")
                result = {**row, "ranking": [], "valid": False, "diagnostics": bad["diagnostics"]}
                any_accepted = False
            else:
                report = validator.validate(row["question"], row["candidates"])
                data = report_to_json(report)
                result = {**row, "ranking": data["ranking"],
                          "question_diagnostics": data["question_diagnostics"]}
                if data["notes"]:
                    result["notes"] = data["notes"]
                any_accepted = any_accepted and report.best is not None
            out.write(_dump(result) + "\n")
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_OK if any_accepted else EXIT_INVALID


_ID_FORMS = re.compile(r"^(?:[A-Za-z]+:|https?://www\.wikidata\.org/(?:entity|prop(?:/[a-z-]+)*)/)?"
                       r"([QPL][1-9][0-9]*)$")


def _normalise_id(text: str) -> str:
    match = _ID_FORMS.match(text.strip().strip("<>"))
    if match is None:
        raise UsageError(f"labels: {text!r} is not a Wikidata id (Q42, P31, wd:Q42, or its IRI)")
    return match.group(1)


def cmd_labels(args: argparse.Namespace) -> int:
    from kgqa_validator.builtin.endpoint_labels import active, lookup

    ids = list(dict.fromkeys(_normalise_id(i) for i in args.ids))
    settings = _endpoint_settings(args, Settings.for_mode(args.mode, _prefixes(args.prefix)))
    table = _validator(args, settings).property_table()
    # The shipped property table answers property ids offline.
    offline = table is not None and all(
        i.startswith("P") and (i in table or table.missing(i)) for i in ids)
    # The endpoint is asked unless only label files were given, or the table answers all.
    use_endpoint = bool(args.endpoint or args.data or not (args.labels or offline))
    settings = replace(settings, labels_files=tuple(args.labels), endpoint_labels=use_endpoint)
    _check_endpoint(settings)
    validator = _validator(args, settings)
    labels = validator.labels(ids)
    unknown: frozenset[str] = frozenset()
    unchecked: frozenset[str] = frozenset()
    source = None
    if use_endpoint and active(settings):
        from kgqa_validator.execution import executor_for

        found = lookup(ids, settings)  # answered from the cache just filled
        unknown, unchecked = found.unknown, found.unchecked
        source = executor_for(settings).name
    if table is not None:
        unknown = unknown | {i for i in ids if table.missing(i)}

    def datatype(id_: str) -> str | None:
        return table.datatype(id_) if table is not None else None

    if args.json:
        print(_dump({
            "endpoint": source,
            "files": [str(p) for p in args.labels],
            "ids": [{"id": i, "label": labels.get(i),
                     "known": (i not in unknown)
                     if (table is not None and i.startswith("P"))
                     or (source is not None and i not in unchecked) else None,
                     # Properties also say what they hold (from the shipped property table).
                     **({"datatype": datatype(i)} if table is not None and i.startswith("P") else {})}
                    for i in ids],
        }))
    else:
        for id_ in ids:
            kind = f"\t{datatype(id_)}" if datatype(id_) else ""
            if id_ in labels:
                print(f"{id_}\t{labels[id_]}{kind}")
            elif id_ in unknown:
                where = source or "the shipped property table"
                print(f"{id_}\t-\tunknown to {where} (likely a hallucinated id)")
            elif id_ in unchecked:
                print(f"{id_}\t-\tnot checked ({source} gave no usable answer)")
            else:
                print(f"{id_}\t-\tno English label{kind}")
    return EXIT_OK if all(i in labels for i in ids) else EXIT_INVALID


def cmd_plugins(args: argparse.Namespace) -> int:
    from kgqa_validator.plugins import get_plugin_manager

    pm = get_plugin_manager(autoload=False if args.no_plugins else None, block=args.block)
    infos = pm.describe()
    if args.json:
        print(_dump({
            "plugins": [{"name": i.name, "version": i.version, "origin": i.origin,
                         "hooks": list(i.hooks)} for i in infos],
            "failed": [{"name": f.name, "error": f.error} for f in pm.failures],
        }))
        return EXIT_OK
    for info in infos:
        print(f"{info.name:<24} {info.version:<10} {info.origin:<32} {', '.join(info.hooks)}")
    for failure in pm.failures:
        print(f"{failure.name:<24} FAILED     {failure.error}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from kgqa_validator.model.recipes import CHAINED, RECIPES
    from kgqa_validator.model.train import train, train_chained

    if args.recipe in CHAINED:
        if args.data_dir is None:
            raise UsageError(f"train --recipe {args.recipe} needs --data-dir (the folder of the datasets)")
        result = train_chained(args.recipe, args.data_dir, args.output, base=args.base,
                               device=args.device, fp16=not args.fp32, progress=not args.quiet,
                               checkpoint_every=args.checkpoint_every, max_steps=args.max_steps,
                               on_log=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"{args.recipe}: {result.steps} steps -> {args.output} (threshold {result.threshold:.4f})")
        return EXIT_OK
    if not args.data:
        raise UsageError(f"train --recipe {args.recipe} needs --data FILE (repeatable)")
    recipe = RECIPES[args.recipe]
    overrides = {k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "learning_rate": args.lr}.items() if v is not None}
    recipe = replace(recipe, **overrides)
    labels: dict[str, str] = {}
    from kgqa_validator.builtin.labels import load_labels

    for path in args.labels:
        labels.update(load_labels(path))
    result = train(args.data, args.output, recipe, labels=labels, exclude=args.exclude, base=args.base,
                   max_steps=args.max_steps, resume=args.resume, device=args.device,
                   calibrate_only=args.calibrate_only,
                   fp16=not args.fp32, progress=not args.quiet,
                   checkpoint_every=args.checkpoint_every)
    print(f"trained {result.steps} steps in {result.seconds:.0f}s -> {result.output} "
          f"(threshold {result.threshold:.4f})")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from kgqa_validator.builtin.labels import load_labels
    from kgqa_validator.model.evaluate import evaluate_models

    if args.llm_candidates is not None:
        from kgqa_validator.model import evaluate_candidates as llm

        result = llm.evaluate_llm_candidates(args.llm_candidates, limit=args.limit,
                                             weights=llm.SENSITIVITY, progress=not args.quiet)
        print("\n".join(llm.format_result(result)))
        if args.test is None:
            if args.output_json is not None:
                llm.write_result(result, args.output_json)
            return EXIT_OK
    if args.test is None:
        raise UsageError("evaluate: give --test FILE (LC-QuAD 2.0 test JSON) or --llm-candidates FILE")

    labels: dict[str, str] = {}
    for path in args.labels:
        labels.update(load_labels(path))
    models = args.model or [None]
    result = evaluate_models(
        models, test=args.test, labelized=args.labelized, labels=labels, limit=args.limit,
        json_path=args.output_json, card_path=args.card, progress=not args.quiet,
        precisions=args.precision or ["fp32"], human=args.human, noa=args.noa,
        property_table=not args.no_property_table, labels_files=args.labels, workers=args.workers)
    for name, sets in result["models"].items():
        print(name)
        for set_name, metrics in sets.items():
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                              if isinstance(v, float) and not k.endswith("threshold"))
            print(f"  {set_name:<22} {shown}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kgqa-validator", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--version", action="version", version=f"kgqa-validator {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = sub.add_parser("check", help="validate SPARQL queries")
    check.add_argument("query", nargs="?", help="the query, or - to read it from standard input")
    check.add_argument("--jsonl", metavar="FILE",
                       help="JSON lines with a 'sparql' field ('-' for stdin); writes JSON lines")
    check.add_argument("--output", "-o", help="write --jsonl results here (default stdout)")
    check.add_argument("--resume", action="store_true",
                       help="keep the finished lines of --output and continue after them")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--question", help="check the query's form against this question")
    check.add_argument("--workers", type=int, help="parser processes (default: one per core)")
    _add_common(check)
    add_field_options(check, "query", "sparql")
    check.set_defaults(func=cmd_check)

    for name in ("rerank", "validate"):
        rerank = sub.add_parser(name, help="score, rank and reject candidates for a question")
        rerank.add_argument("candidates", nargs="*", help="candidate queries")
        rerank.add_argument("--question", "-q", help="the user's question")
        rerank.add_argument("--candidates", dest="candidates_file", type=Path, metavar="FILE",
                            help="one candidate per line, or a JSON array of strings")
        rerank.add_argument("--jsonl", metavar="FILE",
                            help='bulk: lines of {"question", "candidates"} (- for stdin)')
        rerank.add_argument("--output", "-o", help="write --jsonl results here (default stdout)")
        rerank.add_argument("--resume", action="store_true",
                            help="keep the finished lines of --output and continue after them")
        rerank.add_argument("--json", action="store_true", help="machine-readable output")
        _add_common(rerank)
        _add_scoring(rerank)
        add_field_options(rerank, "candidates", "candidates")
        rerank.set_defaults(func=cmd_rerank)

    labels = sub.add_parser("labels", help="show what the label sources say about ids")
    labels.add_argument("ids", nargs="+", metavar="ID", help="Q42, P31, wd:Q42 or an entity IRI")
    labels.add_argument("--labels", action="append", default=[], type=Path, metavar="FILE",
                        help='JSON labels file (repeatable); alone, the endpoint is not asked')
    labels.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(labels)
    _add_endpoint(labels)
    labels.set_defaults(func=cmd_labels)

    from kgqa_validator.audit.command import add_parser as add_audit_parser

    add_audit_parser(sub)

    plugins = sub.add_parser("plugins", help="list the loaded plugins")
    plugins.add_argument("--json", action="store_true")
    plugins.add_argument("--no-plugins", action="store_true")
    plugins.add_argument("--block", action="append", default=[])
    plugins.set_defaults(func=cmd_plugins)

    train = sub.add_parser("train", help="fine-tune the encoder from the base model")
    train.add_argument("--data", action="append", type=Path,
                       help="training file: LC-QuAD 2.0 JSON, labelized JSONL, LC-QuAD-NoA "
                            "JSON or {question, sparql, label} JSONL (repeatable)")
    train.add_argument("--output", "-o", required=True, type=Path, help="model folder to write")
    train.add_argument("--recipe", choices=["default", "seed", "labelized-stage", "generator-stage", "v2"],
                       default="default", help="v2: the shipped model, every stage (needs --data-dir)")
    train.add_argument("--data-dir", type=Path,
                       help="folder holding the datasets a chained recipe (v2) reads")
    train.add_argument("--labels", action="append", default=[], type=Path,
                       help="labels file for the verbalised examples (repeatable)")
    train.add_argument("--exclude", action="append", default=[], type=Path,
                       help="never train on questions or queries of this file (a test split)")
    train.add_argument("--base", type=Path,
                       help="start from this model folder (default: the base all-MiniLM-L6-v2)")
    train.add_argument("--epochs", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--max-steps", type=int, help="stop after this many steps")
    train.add_argument("--checkpoint-every", type=int, default=200)
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    train.add_argument("--calibrate-only", action="store_true",
                       help="only recompute --output's thresholds on this data's calibration slice")
    train.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    train.add_argument("--fp32", action="store_true", help="save fp32 weights (default fp16)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="measure models on fixed evaluation sets")
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
    evaluate.add_argument("--precision", action="append", choices=PRECISIONS[1:],
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
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    from kgqa_validator.service.commands import add_service_commands

    add_service_commands(sub, add_common=_add_common, base_settings=_settings)
    return parser


def _one_line(message: object) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= 500 else text[:499] + "…"


def _tolerant_streams() -> None:
    """Undecodable input bytes and unencodable characters never stop the CLI.

    Standard input reads like an input file (see :func:`_open_input`); standard output and
    error write a lone surrogate as its backslash escape (valid JSON in a JSON string).
    """
    for stream, options in ((sys.stdin, {"encoding": "utf-8-sig", "errors": "surrogateescape"}),
                            (sys.stdout, {"errors": "backslashreplace"}),
                            (sys.stderr, {"errors": "backslashreplace"})):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if "encoding" in options and (getattr(stream, "encoding", "") or "").lower().replace(
                    "-", "").replace("_", "") not in ("utf8", "utf8sig"):
                options = {"errors": options["errors"]}  # keep a non-UTF-8 locale's encoding
            reconfigure(**options)
        except (ValueError, OSError, AttributeError):
            pass  # a replaced stream (tests, embedding) is left as it is


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _tolerant_streams()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("kgqa-validator: give a command (check, rerank, validate, audit, "
                             "plugins, labels, train, evaluate, serve, mcp); --help lists them")
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print("kgqa-validator: interrupted (finished results were written)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (KgqaValidatorError, ConfigurationError) as exc:
        print(f"kgqa-validator: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        print(f"kgqa-validator: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: still one line and exit 2; the traceback with -v
        logging.getLogger(__name__).info("unexpected error", exc_info=True)
        print(f"kgqa-validator: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(run with -v for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
