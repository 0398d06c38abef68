"""Strict validity from pyoxigraph: fencing, SERVICE masking, error offsets.

pyoxigraph's SPARQL 1.1 parser decides *validity* (it passes the W3C syntax suite and
accepts the query-service spellings rdflib rejects).  A valid SELECT's projection comes with
its result, and its WHERE group parsed again as ``SELECT * WHERE { ... }`` projects exactly
the variables in scope there (:func:`strict_check` with ``scope``).  Nothing is evaluated:
pyoxigraph is asked for a lazily evaluated result that is dropped unread, and ASK (which
pyoxigraph evaluates eagerly) is checked as the equivalent SELECT.

pyoxigraph's query planner (join reordering) is super-linear in the size of a basic graph
pattern: 200 objects in one object list take seconds, 300 take 20 s.  The planner does not
look inside ``SERVICE``, so the copy pyoxigraph parses has its WHERE group fenced as
``{SERVICE ?kgqa_fence_ { ... }}``: the same GroupGraphPattern in the same place, so the
same grammar decides, and the variable endpoint is never called (``CONSTRUCT WHERE { T }``
is checked as ``CONSTRUCT { T } WHERE {SERVICE ?kgqa_fence_ { T }}``).  Positions in the
longer copy are mapped back to the user's text.  Because pyoxigraph starts evaluating a
leading SERVICE as soon as the query is prepared, the caller hands it a copy whose SERVICE
targets are masked (:func:`neutralise_services`).  pyoxigraph runs on a thread with a large
stack for long queries, because long patterns recurse deeply in its native code (a
6,000-element object list overflows the default 8 MB stack and kills the process).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kgqa_validator.parsing.clauses import query_keyword, short_construct, where_group
from kgqa_validator.parsing.lexer import LexicalFacts, LineIndex, Token, tokenize
from kgqa_validator.parsing.scope import bound_outside_where

_OX_POSITION = re.compile(r"error at (\d+):(\d+): (.*)", re.DOTALL)
_BASE_IRI = "http://kgqa-validator.invalid/base/"
_UNSUPPORTED_FUNCTION = re.compile(r"^The custom (?:aggregate )?function <[^>]*> is not supported")
_FENCE_VAR = "kgqa_fence_"
_FENCE_OPEN = "{SERVICE ?" + _FENCE_VAR + " {"
_FENCE_CLOSE = "}}"
_STACK_BYTES = 512 * 1024 * 1024
# Below this many characters a query cannot hold enough patterns to exhaust a default stack
# (a 4,000-element object list, 39,000 characters, still fits in 8 MB).
_BIG_STACK_CHARS = 2_000
_T = TypeVar("_T")


class _BigStack:
    """One daemon thread with a large stack that runs the calls given to it, one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.Queue[tuple[Callable[[], Any], list[Any], threading.Event]] | None = None

    def _loop(self, jobs: queue.Queue[tuple[Callable[[], Any], list[Any], threading.Event]]) -> None:
        while True:
            fn, box, done = jobs.get()
            try:
                box.append((True, fn()))
            except BaseException as exc:  # handed back to the caller's thread
                box.append((False, exc))
            done.set()

    def run(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            if self._jobs is None:
                jobs: queue.Queue[tuple[Callable[[], Any], list[Any], threading.Event]] = queue.Queue()
                try:
                    previous = threading.stack_size(_STACK_BYTES)
                    try:
                        threading.Thread(target=self._loop, args=(jobs,), daemon=True,
                                         name="kgqa-strict-parser").start()
                    finally:
                        threading.stack_size(previous)
                except (RuntimeError, ValueError, MemoryError):
                    return fn()  # no large stack to be had here: the default one will do
                self._jobs = jobs
            box: list[Any] = []
            done = threading.Event()
            self._jobs.put((fn, box, done))
            done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        result: _T = value
        return result


_BIG_STACK = _BigStack()


@dataclass(frozen=True)
class StrictVerdict:
    """pyoxigraph's verdict on a query, and what it learnt of a valid SELECT's variables."""

    error: tuple[int, str] | None  # offset in the text, reason
    projected: tuple[str, ...] | None = None
    bound: frozenset[str] | None = None  # in scope in WHERE, plus aliases and trailing VALUES
    unfenced: bool = False  # the tokens showed no WHERE group to fence, yet there are braces


def strict_check(text: str, prefixes: Mapping[str, str], *, scope: bool = False) -> StrictVerdict:
    """pyoxigraph's verdict on ``text``; with ``scope``, also the variables a valid SELECT
    projects and binds (its WHERE group parsed again as ``SELECT * WHERE``, which projects
    exactly the variables in scope there)."""
    tokens = tokenize(text)
    keyword = query_keyword(tokens)
    group = where_group(tokens, keyword) if keyword is not None else None
    strict_text, to_original = _fenced(text, tokens, keyword, group)
    message, projected = _strict_parse(strict_text, prefixes)
    if message is not None:
        return StrictVerdict(_strict_error_offset(message, text, strict_text, to_original, tokens,
                                            keyword, group))
    # SELECT and ASK always have a WHERE group (CONSTRUCT and DESCRIBE need not).
    unfenced = group is None and keyword is not None and tokens[keyword].upper in ("SELECT", "ASK")
    if unfenced or not scope or keyword is None or group is None \
            or tokens[keyword].upper != "SELECT" or projected is None:
        return StrictVerdict(None, unfenced=unfenced)
    open_, close = tokens[group[0]].start, tokens[group[1]].start
    where = text[:tokens[keyword].start] + "SELECT * WHERE " + _FENCE_OPEN \
        + text[open_ + 1:close] + _FENCE_CLOSE
    message, in_scope = _strict_parse(where, prefixes)
    if message is not None or in_scope is None:
        return StrictVerdict(None, projected)
    return StrictVerdict(None, projected,
                   frozenset(in_scope) | frozenset(bound_outside_where(tokens, group)))


def neutralise_services(text: str, facts: LexicalFacts) -> str:
    """``SERVICE <iri>`` -> ``SERVICE ?sss..`` (same length): still valid, never callable."""
    if not facts.services:
        return text
    chars = list(text)
    for target in facts.services:
        if target.kind in ("iri", "pname") and len(target.text) >= 2:
            chars[target.start:target.end] = ["?"] + ["s"] * (len(target.text) - 1)
    return "".join(chars)


def _fenced(text: str, tokens: list[Token], keyword: int | None,
            group: tuple[int, int] | None) -> tuple[str, Callable[[int], int]]:
    """The text pyoxigraph should parse, and a map from its offsets back to ``text``'s.

    ASK is evaluated eagerly by pyoxigraph, so it is checked as the equivalent SELECT; the
    WHERE group is fenced off from the query planner (see the module's docstring).
    """
    edits: list[tuple[int, int, str]] = []  # (offset, length replaced, replacement)
    if keyword is not None and tokens[keyword].upper == "ASK":
        edits.append((tokens[keyword].start, len(tokens[keyword].text), "SELECT (1 AS ?kgqa_ask_)"))
    if group is not None:
        edits.append((tokens[group[0]].start, 1, _FENCE_OPEN))
        edits.append((tokens[group[1]].start, 1, _FENCE_CLOSE))
    elif keyword is not None and tokens[keyword].upper == "CONSTRUCT":
        short = short_construct(tokens, keyword)
        if short is not None:
            # CONSTRUCT WHERE { T } is checked as CONSTRUCT { T } WHERE {SERVICE ?f { T }}: the
            # template is parsed first, by the same grammar rule (ConstructTriples is
            # TriplesTemplate), and the copy behind the fence keeps the planner away.
            where, open_, close = short
            body = text[tokens[open_].start + 1:tokens[close].start]
            edits.append((tokens[where].start, len(tokens[where].text), ""))
            edits.append((tokens[close].start, 1, "} WHERE " + _FENCE_OPEN + body + _FENCE_CLOSE))
    pieces: list[str] = []
    position = 0
    for offset, length, replacement in edits:
        pieces += [text[position:offset], replacement]
        position = offset + length
    pieces.append(text[position:])

    def to_original(new_offset: int) -> int:
        delta = 0
        for offset, length, replacement in edits:
            start = offset + delta
            if new_offset < start:
                break
            if new_offset < start + len(replacement):
                return offset
            delta += len(replacement) - length
        return max(0, new_offset - delta)

    return "".join(pieces), to_original


def _strict_parse(text: str, prefixes: Mapping[str, str]) -> tuple[str | None, tuple[str, ...] | None]:
    """pyoxigraph's error message (``None`` when the query is valid SPARQL 1.1), and the
    variables a valid SELECT projects (``None`` when unknown or not a SELECT)."""
    if len(text) <= _BIG_STACK_CHARS:
        return _strict_parse_here(text, prefixes)  # the handover would cost more than the parse
    return _BIG_STACK.run(lambda: _strict_parse_here(text, prefixes))


def _strict_parse_here(text: str, prefixes: Mapping[str, str]) -> tuple[str | None, tuple[str, ...] | None]:
    import pyoxigraph

    store = pyoxigraph.Store()
    try:
        # A base IRI makes relative IRIs (<a>, PREFIX : <#>) resolvable, as the grammar allows
        # them; without one pyoxigraph rejects them, and its PEG parser then backtracks into
        # misleading errors.  A BASE in the query still wins.
        result = store.query(text, prefixes=dict(prefixes), base_iri=_BASE_IRI)
    except SyntaxError as exc:
        return str(exc), None
    except RuntimeError as exc:
        if _UNSUPPORTED_FUNCTION.search(str(exc)):
            # Raised by the query planner, after a successful parse: an extension function
            # (geof:distance, <http://example/f>(?x)) is valid syntax that pyoxigraph cannot run.
            return None, None
        return f"{type(exc).__name__}: {exc}", None
    except (ValueError, OSError) as exc:  # pragma: no cover - defensive
        return f"{type(exc).__name__}: {exc}", None
    # Lazily evaluated: never iterated, so nothing runs.  A SELECT's result knows its
    # projection before any row is computed.
    variables = getattr(result, "variables", None)
    names = tuple(v.value for v in variables if v.value != _FENCE_VAR) \
        if variables is not None else None
    del result
    return None, names


def _short_reason(message: str) -> str:
    """pyoxigraph's 'expected one of ...' can list 60 alternatives: keep the first few.

    A rule beyond the grammar (scoping, VALUES arity) is one sentence among the alternatives:
    that sentence is the reason.
    """
    message = " ".join(message.split())
    if message.startswith("expected one of "):
        items = [i.strip() for i in message[len("expected one of "):].split(",")]
        sentences = [i for i in items if " " in i and i[:1].isupper() and "'" not in i]
        if sentences:
            return sentences[0]
        words = [i for i in items if i and not i.startswith("[") and "'" not in i][:8]
        return "expected one of " + ", ".join(words) + (" ..." if len(items) > len(words) else "")
    if message in ("expected [_]", "expected <unreported>"):
        return "not allowed here"
    return message[:200]


def _strict_error_offset(message: str, text: str, strict_text: str,
                         to_original: Callable[[int], int], tokens: list[Token],
                         keyword: int | None, group: tuple[int, int] | None) -> tuple[int, str]:
    match = _OX_POSITION.match(message)
    if not match:
        return len(text.rstrip()), _short_reason(message)
    line, column = int(match.group(1)), int(match.group(2))
    offset = to_original(LineIndex(strict_text).offset(line, column))
    # pyoxigraph points past the failure (often at the end of input): step back onto a token,
    # and to its start.
    offset = min(offset, len(text))
    while offset > 0 and (offset >= len(text) or text[offset].isspace()):
        offset -= 1
    for token in tokens:
        if token.start <= offset < token.end:
            offset = token.start
            break
    reason = _short_reason(match.group(3))
    return _rule_location(reason, tokens, keyword, group, offset), reason


def _rule_location(reason: str, tokens: list[Token], keyword: int | None,
                   group: tuple[int, int] | None, offset: int) -> int:
    """Where a rule beyond the grammar was broken; pyoxigraph reports where it noticed."""
    if keyword is None:
        return offset
    clause = range(keyword + 1, group[0] if group else len(tokens))
    if reason.startswith("SELECT * is not authorized"):
        star = next((i for i in clause if tokens[i].text == "*"), None)
        return tokens[star].start if star is not None else offset
    if reason.startswith("The SELECT overrides an existing variable") and group is not None:
        in_where = {t.text[1:] for t in tokens[group[0]:group[1]] if t.kind == "var"}
        for i in clause:
            if tokens[i].kind == "var" and tokens[i - 1].upper == "AS" \
                    and tokens[i].text[1:] in in_where:
                return tokens[i].start
    if reason.startswith("The VALUES clause rows"):
        values = [t for t in tokens if t.kind == "word" and t.upper == "VALUES" and t.start < offset]
        return values[-1].start if values else offset
    return offset
