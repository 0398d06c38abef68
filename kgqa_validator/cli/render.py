"""Human output: diagnostics with a caret under the spot, and the ranking table.

JSON output is :mod:`kgqa_validator.report_json`'s, shared with the service.
"""

from __future__ import annotations

import re

from kgqa_validator.ids import ID_PATTERN
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
from kgqa_validator.types import Diagnostic, ExecutionStatus, Report, Severity

_ENTITY = re.compile(rf"^http://www\.wikidata\.org/entity/({ID_PATTERN})$")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


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
    snippet = printable(source[start:start + 100].expandtabs(1))
    prefix = "…" if start else ""
    return [f"    {prefix}{snippet}", "    " + " " * (len(prefix) + column - start) + "^"]


def printable(text: str) -> str:
    """``text`` for a terminal line, one column per character so that the caret lines up:
    lone surrogates (undecodable input bytes) as U+FFFD, control characters and line
    separators as spaces."""
    return _CONTROLS.sub(" ", _SURROGATES.sub("\ufffd", text))


def format_diagnostic(text: str, diagnostic: Diagnostic, name: str = "query") -> list[str]:
    where = f"{name}:{diagnostic.line}:{diagnostic.column}" if diagnostic.span else name
    head = f"{where}: {diagnostic.severity.value} [{diagnostic.code}] {diagnostic.message}"
    return [head, *_caret_lines(text, diagnostic)]


def answer_ids(report: Report) -> list[str]:
    """Wikidata ids among the answer values that the text report shows."""
    ids: list[str] = []
    for verdict in report.verdicts:
        for row in verdict.execution.rows[:3] if verdict.execution is not None else ():
            ids.extend(m.group(1) for v in row.values() if (m := _ENTITY.match(v)))
    return list(dict.fromkeys(ids))


def print_report(report: Report, labels: dict[str, str] | None = None) -> None:
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
            if ex.status is ExecutionStatus.REFUSED:  # never sent: its diagnostic above says why
                print(f"{'':>8}not executed (refused before any request)")
                continue
            shown = "" if amount is None else f" ({amount})"
            print(f"{'':>8}executed: {ex.status.value}{shown} in {ex.elapsed_s:.2f}s")
            for row in ex.rows[:3]:
                print(f"{'':>10}" + "  ".join(f"{k}={compact(v, labels)}"
                                              for k, v in row.items()))
            if ex.row_count is not None and ex.row_count > 3:
                print(f"{'':>10}... {ex.row_count - 3} more")


def compact(value: str, labels: dict[str, str] | None = None) -> str:
    """``wd:Q42`` for ``http://www.wikidata.org/entity/Q42`` (the longest matching prefix),
    followed by its label when one is known: ``wd:Q42 (Douglas Adams)``."""
    match = _ENTITY.match(value)
    if match and labels and match.group(1) in labels:
        return f"{compact(value)} ({printable(short_label(labels[match.group(1)]))})"

    best = max((p for p in WIKIDATA_PREFIXES.items() if value.startswith(p[1])),
               key=lambda p: len(p[1]), default=None)
    if best is None:
        return value if len(value) <= 60 else value[:59] + "…"
    return f"{best[0]}:{value[len(best[1]):]}"


def short_label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:59] + "…"
