"""The structure of a query from rdflib's algebra: projection, bound variables, grouping.

rdflib is the slow reader (pyparsing, about 0.1 ms of CPU per character, quadratic in long
object lists, recursive), so it is only consulted when pyoxigraph's answer is not enough
(see :mod:`.parse`), under a CPU-time deadline (:func:`with_deadline`) and only up to
:data:`RDFLIB_MAX_CHARS`.  It reads a copy normalised by :func:`normalise_for_rdflib`
without moving any character, so the positions it reports are the user's.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from kgqa_validator.parsing.lexer import LexicalFacts

# rdflib (pyparsing) spends about 0.1 ms of CPU per character: past this size it would only
# run out of its time, so pyoxigraph's scope is taken without it.
RDFLIB_MAX_CHARS = 20_000
_T = TypeVar("_T")


class _Deadline(BaseException):
    """Raised by SIGPROF inside rdflib; a BaseException so that no ``except Exception`` in
    rdflib or pyparsing swallows it."""


class StructureTimeout(Exception):
    """rdflib took longer than its share of the time limit; structural checks are skipped."""


def with_deadline(fn: Callable[[], _T], seconds: float | None) -> _T:
    """Run ``fn`` with a deadline of ``seconds`` of this process's CPU time (SIGPROF; main
    thread of a worker process only).  CPU time, not wall time, so that a verdict does not
    depend on how busy the machine is."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        return fn()

    def expire(signum: int, frame: object) -> None:
        raise _Deadline

    previous = signal.signal(signal.SIGPROF, expire)
    try:
        try:
            signal.setitimer(signal.ITIMER_PROF, seconds)
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except _Deadline:
        raise StructureTimeout(f"rdflib took longer than {seconds:g} s") from None
    finally:
        signal.signal(signal.SIGPROF, previous)


def normalise_for_rdflib(text: str, facts: LexicalFacts) -> str:
    """Fix the query-service spellings rdflib rejects, without moving any other character.

    ``wdt:P279 *`` becomes ``wdt:P279* `` and ``"x" @en`` becomes ``"x"@en ``: the gap is
    moved behind the modifier or tag, so every position stays the user's.
    """
    chars = list(text)
    tokens = facts.tokens
    for i in range(len(tokens) - 1):
        left, right = tokens[i], tokens[i + 1]
        gap = right.start - left.end
        if gap <= 0 or not text[left.end:right.start].isspace():
            continue
        if left.kind in ("pname", "iri") and right.kind == "punct" and right.text in "*+?":
            chars[left.end] = right.text
            for k in range(left.end + 1, right.end):
                chars[k] = " "
        elif left.kind == "string" and right.text == "@" and i + 2 < len(tokens):
            tag = tokens[i + 2]
            if tag.start == right.end and tag.kind == "word":
                moved = text[right.start:tag.end]
                chars[left.end:left.end + len(moved)] = list(moved)
                for k in range(left.end + len(moved), tag.end):
                    chars[k] = " "
    return "".join(chars)


def _names(items: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in items)


class _NoLiteralWarnings(logging.Filter):
    """rdflib logs a traceback for a literal it cannot convert (``LIMIT`` with 5,000 digits,
    beyond Python's integer-string limit): nothing is evaluated here, so it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to convert Literal lexical form")


_LITERAL_FILTER = _NoLiteralWarnings()


def read_structure(text: str, prefixes: Mapping[str, str]) -> dict[str, Any]:
    """Read projection, bound variables and grouping from rdflib's algebra."""
    rdflib_term = logging.getLogger("rdflib.term")
    if _LITERAL_FILTER not in rdflib_term.filters:
        rdflib_term.addFilter(_LITERAL_FILTER)
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery
    from rdflib.plugins.sparql.parserutils import CompValue

    query = translateQuery(parseQuery(text), initNs=dict(prefixes))
    algebra = query.algebra
    info: dict[str, Any] = {"projected": (), "bound": set(), "group_by": None,
                            "ungrouped": (), "aggregates": ()}
    project = None
    stack: list[Any] = [algebra]
    group_vars: list[str] | None = None
    samples: dict[str, str] = {}
    aliases: dict[str, str] = {}
    aggregates: list[str] = []
    while stack:
        node = stack.pop()
        if isinstance(node, CompValue):
            name = node.name
            if name == "Project" and project is None:
                project = node
            elif name == "Group" and group_vars is None:
                exprs = node.get("expr") or []
                group_vars = [str(e) for e in exprs if e.__class__.__name__ == "Variable"]
            elif name == "Extend" and node.get("var") is not None:
                aliases[str(node.get("expr"))] = str(node["var"])
            elif name.startswith("Aggregate_"):
                if name == "Aggregate_Sample":
                    samples[str(node.get("res"))] = str(node.get("vars"))
                else:
                    aggregates.append(name[len("Aggregate_"):].upper())
            stack.extend(v for v in node.values() if isinstance(v, (CompValue, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (CompValue, list)))
    if algebra.name == "SelectQuery":
        info["projected"] = _names(algebra.get("PV") or ())
    if project is not None:
        inner = project.get("p")
        info["bound"] = {str(v) for v in (getattr(inner, "_vars", None) or ())}
    if group_vars is not None or samples:
        info["group_by"] = tuple(group_vars or ())
        auto = [var for res, var in samples.items() if aliases.get(res) == var]
        explicit = [res for res, var in samples.items() if aliases.get(res) != var]
        aggregates.extend("SAMPLE" for _ in explicit)
        info["ungrouped"] = tuple(v for v in auto if v not in (group_vars or ()))
    info["aggregates"] = tuple(aggregates)
    return info
