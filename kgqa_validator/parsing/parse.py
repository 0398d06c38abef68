"""Parsing one candidate: limits, dialect, strict validity (pyoxigraph), structure.

Who decides what:

* the **lexer** (:mod:`.lexer`) answers first, in linear time: size, illegal characters,
  nesting depth, update operations, undeclared prefixes, query-service dialect, and the
  longest-token rule pyoxigraph's PEG parser misses (``FILTER(?x<?a&&?b>?y)``);
* **pyoxigraph**'s SPARQL 1.1 parser decides *validity* (it passes the W3C syntax suite and
  accepts the query-service spellings rdflib rejects).  A valid SELECT's projection comes with
  its result, and its WHERE group parsed again as ``SELECT * WHERE { ... }`` projects exactly
  the variables in scope there: with the aliases and a trailing VALUES read from the tokens,
  that is the *structure* (projected and bound variables) the lints need; grouping and
  aggregates are read from the tokens;
* **rdflib** is only consulted when that is not enough: when pyoxigraph rejects the query (its
  error location, the start of the offending construct, is the better one to report, and it
  tells which variables are ungrouped), when a projected variable looks unbound (rdflib must
  confirm before ``unbound_projection``, an error, is reported), or when pyoxigraph gave no
  projection.  It reads a copy normalised without moving any character, so its positions are
  the user's.  This keeps rdflib, at 3-6 ms a query, off the path of almost every valid query.

A query pyoxigraph accepts is never rejected because rdflib fails on it: the structural lints
are then skipped with an ``info`` note.  Nothing here evaluates a query: pyoxigraph is asked
for a lazily evaluated result that is dropped unread, and ASK (which pyoxigraph evaluates
eagerly) is checked as the equivalent SELECT.

pyoxigraph's query planner (join reordering) is super-linear in the size of a basic graph
pattern: 200 objects in one object list take seconds, 300 take 20 s.  The planner does not
look inside ``SERVICE``, so the copy pyoxigraph parses has its WHERE group fenced as
``{SERVICE ?kgqa_fence_ { ... }}``: the same GroupGraphPattern in the same place, so the
same grammar decides, and the variable endpoint is never called (``CONSTRUCT WHERE { T }``
is checked as ``CONSTRUCT { T } WHERE {SERVICE ?kgqa_fence_ { T }}``).  Positions in the
longer copy are mapped back to the user's text.  pyoxigraph runs on a thread with a large
stack for long queries, because long patterns recurse deeply in its native code (a
6,000-element object list overflows the default 8 MB stack and kills the process).
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kgqa_validator import network_fence
from kgqa_validator.parsing.lexer import (
    AGGREGATES,
    QUERY_KEYWORDS,
    SPARQL_WORDS,
    UPDATE_KEYWORDS,
    LexicalFacts,
    LineIndex,
    Token,
    analyse,
    expand_name,
    matching_bracket,
    tokenize,
)
from kgqa_validator.prefixes import LABEL_SERVICE
from kgqa_validator.types import Diagnostic, Form, ParsedQuery, Severity, Span

PRODUCER = "parse"
_BAD_CHARS = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_OX_POSITION = re.compile(r"error at (\d+):(\d+): (.*)", re.DOTALL)
_ID_NAME = re.compile(r"^(?:[A-Za-z]+):([QPL]\d+)$")
_UNKNOWN_PREFIX_IRI = "http://kgqa-validator.invalid/unknown-prefix/"
_BASE_IRI = "http://kgqa-validator.invalid/base/"
_UNSUPPORTED_FUNCTION = re.compile(r"^The custom (?:aggregate )?function <[^>]*> is not supported")
_FENCE_VAR = "kgqa_fence_"
_FENCE_OPEN = "{SERVICE ?" + _FENCE_VAR + " {"
_FENCE_CLOSE = "}}"
_STACK_BYTES = 512 * 1024 * 1024
# Below this many characters a query cannot hold enough patterns to exhaust a default stack
# (a 4,000-element object list, 39,000 characters, still fits in 8 MB).
_BIG_STACK_CHARS = 2_000
# rdflib (pyparsing) spends about 0.1 ms of CPU per character: past this size it would only
# run out of its time, so pyoxigraph's scope is taken without it.
_RDFLIB_MAX_CHARS = 20_000
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


class _Deadline(BaseException):
    """Raised by SIGPROF inside rdflib; a BaseException so that no ``except Exception`` in
    rdflib or pyparsing swallows it."""


class StructureTimeout(Exception):
    """rdflib took longer than its share of the time limit; structural checks are skipped."""


def _with_deadline(fn: Callable[[], _T], seconds: float | None) -> _T:
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


def excerpt_at(text: str, offset: int, limit: int = 40) -> str:
    """The token starting at ``offset`` (to the next whitespace), at most ``limit`` chars."""
    end = offset
    while end < len(text) and end - offset < limit and not text[end].isspace():
        end += 1
    return text[offset:end] if end > offset else text[offset:offset + 1]


class DiagnosticBuilder:
    """Collects diagnostics with positions in the user's text."""

    def __init__(self, text: str, producer: str = PRODUCER) -> None:
        self.text = text
        self.producer = producer
        self.lines = LineIndex(text)
        self.items: list[Diagnostic] = []

    def add(self, code: str, severity: Severity, message: str, offset: int | None = None,
            length: int = 1, excerpt: str | None = None) -> None:
        span = None
        if offset is not None:
            offset = max(0, min(offset, len(self.text)))
            line, column = self.lines.position(offset)
            span = Span(line, column, offset, length)
            if excerpt is None:
                excerpt = excerpt_at(self.text, offset)
        self.items.append(
            Diagnostic(code, severity, message, span, (excerpt or "")[:80], self.producer))

    @property
    def has_error(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)


def _form_of(keyword: Token | None) -> Form:
    if keyword is None:
        return Form.UNKNOWN
    upper = keyword.upper
    if upper in QUERY_KEYWORDS:
        return Form(upper.lower())
    if upper in UPDATE_KEYWORDS or upper == "WITH":
        return Form.UPDATE
    return Form.UNKNOWN


def _blank(text: str, ranges: Iterable[tuple[int, int]]) -> str:
    """Replace ranges with spaces (newlines kept) so no other character moves."""
    chars = list(text)
    for start, end in ranges:
        for i in range(start, min(end, len(chars))):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


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


def _neutralise_services(text: str, facts: LexicalFacts) -> str:
    """``SERVICE <iri>`` -> ``SERVICE ?sss..`` (same length): still valid, never callable."""
    if not facts.services:
        return text
    chars = list(text)
    for target in facts.services:
        if target.kind in ("iri", "pname") and len(target.text) >= 2:
            chars[target.start:target.end] = ["?"] + ["s"] * (len(target.text) - 1)
    return "".join(chars)


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


def _where_group(tokens: list[Token], keyword: int) -> tuple[int, int] | None:
    """Token indices of the WHERE group's braces (``None`` if there is no such group).

    It is the first ``{`` outside parentheses after the query keyword (parentheses hold
    ``(EXISTS { ... } AS ?x)`` in a SELECT clause); CONSTRUCT's template comes first, and
    ``CONSTRUCT WHERE { triples }`` has no group pattern at all.
    """
    template = tokens[keyword].upper == "CONSTRUCT"
    parens = 0
    i = keyword + 1
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "punct":
            if token.text == "(":
                parens += 1
            elif token.text == ")":
                parens = max(0, parens - 1)
            elif token.text == "{" and parens == 0:
                close = matching_bracket(tokens, i)
                if close >= len(tokens) or tokens[close].text != "}":
                    return None
                if not template:
                    return i, close
                if tokens[i - 1].upper == "WHERE":
                    return None
                template = False
                i = close
        i += 1
    return None


def _short_construct(tokens: list[Token], keyword: int) -> tuple[int, int, int] | None:
    """Token indices of WHERE, ``{`` and ``}`` in ``CONSTRUCT WHERE { triples }`` (without FROM:
    the long form puts FROM after the template, so the copy would not be the same text)."""
    i = keyword + 1
    if i + 1 >= len(tokens) or tokens[i].upper != "WHERE" or tokens[i + 1].text != "{":
        return None
    close = matching_bracket(tokens, i + 1)
    if close >= len(tokens) or tokens[close].text != "}":
        return None
    return i, i + 1, close


@dataclass(frozen=True)
class _Strict:
    """pyoxigraph's verdict on a query, and what it learnt of a valid SELECT's variables."""

    error: tuple[int, str] | None  # offset in the text, reason
    projected: tuple[str, ...] | None = None
    bound: frozenset[str] | None = None  # in scope in WHERE, plus aliases and trailing VALUES
    unfenced: bool = False  # the tokens showed no WHERE group to fence, yet there are braces


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
        short = _short_construct(tokens, keyword)
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


def _bound_outside_where(tokens: list[Token], group: tuple[int, int]) -> set[str]:
    """Variables a SELECT binds outside its WHERE group: ``(... AS ?v)`` in the SELECT and
    GROUP BY clauses, and a trailing ``VALUES``."""
    bound: set[str] = set()
    values = False
    for i, token in enumerate(tokens):
        if group[0] <= i <= group[1]:
            continue
        if token.kind == "word" and token.upper == "VALUES" and i > group[1]:
            values = True
        elif token.kind == "var" and (values or (i and tokens[i - 1].upper == "AS")):
            bound.add(token.text[1:])
        elif values and token.text == "{":
            values = False
    return bound


def _strict_check(text: str, prefixes: Mapping[str, str], *, scope: bool = False) -> _Strict:
    """pyoxigraph's verdict on ``text``; with ``scope``, also the variables a valid SELECT
    projects and binds (its WHERE group parsed again as ``SELECT * WHERE``, which projects
    exactly the variables in scope there)."""
    tokens = tokenize(text)
    keyword = _query_keyword(tokens)
    group = _where_group(tokens, keyword) if keyword is not None else None
    strict_text, to_original = _fenced(text, tokens, keyword, group)
    message, projected = _strict_parse(strict_text, prefixes)
    if message is not None:
        return _Strict(_strict_error_offset(message, text, strict_text, to_original, tokens,
                                            keyword, group))
    # SELECT and ASK always have a WHERE group (CONSTRUCT and DESCRIBE need not).
    unfenced = group is None and keyword is not None and tokens[keyword].upper in ("SELECT", "ASK")
    if unfenced or not scope or keyword is None or group is None \
            or tokens[keyword].upper != "SELECT" or projected is None:
        return _Strict(None, unfenced=unfenced)
    open_, close = tokens[group[0]].start, tokens[group[1]].start
    where = text[:tokens[keyword].start] + "SELECT * WHERE " + _FENCE_OPEN \
        + text[open_ + 1:close] + _FENCE_CLOSE
    message, in_scope = _strict_parse(where, prefixes)
    if message is not None or in_scope is None:
        return _Strict(None, projected)
    return _Strict(None, projected,
                   frozenset(in_scope) | frozenset(_bound_outside_where(tokens, group)))


def _query_keyword(tokens: list[Token]) -> int | None:
    """Index of the query form's keyword (the first word after the prologue), if it is one."""
    keyword = next((i for i, t in enumerate(tokens)
                    if t.kind == "word" and t.upper not in ("PREFIX", "BASE")), None)
    return keyword if keyword is not None and tokens[keyword].upper in QUERY_KEYWORDS else None


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


def _select_clause(facts: LexicalFacts) -> list[Token]:
    tokens = facts.tokens
    keyword = facts.first_keyword
    if keyword is None or keyword.upper != "SELECT":
        return []
    start = tokens.index(keyword) + 1
    clause = []
    for token in tokens[start:]:
        if token.text == "{" or token.upper in ("WHERE", "FROM"):
            break
        clause.append(token)
    return clause


def _aggregates_without_alias(facts: LexicalFacts) -> list[Token]:
    """Aggregate calls in the SELECT clause that are not inside ``( ... AS ?v)``."""
    found: list[Token] = []
    clause = _select_clause(facts)
    depth = 0
    group_has_as = False
    group_aggregates: list[Token] = []
    for i, token in enumerate(clause):
        if token.text == "(":
            depth += 1
            if depth == 1:
                group_has_as, group_aggregates = False, []
        elif token.text == ")":
            if depth == 1 and group_aggregates and not group_has_as:
                found.extend(group_aggregates[:1])
            depth = max(0, depth - 1)
        elif token.kind == "word" and token.upper in AGGREGATES and i + 1 < len(clause) \
                and clause[i + 1].text == "(":
            if depth == 0:
                found.append(token)
            else:
                group_aggregates.append(token)
        elif token.kind == "word" and token.upper == "AS" and depth == 1:
            group_has_as = True
    return found


def _names(items: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in items)


class _NoLiteralWarnings(logging.Filter):
    """rdflib logs a traceback for a literal it cannot convert (``LIMIT`` with 5,000 digits,
    beyond Python's integer-string limit): nothing is evaluated here, so it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to convert Literal lexical form")


_LITERAL_FILTER = _NoLiteralWarnings()


def _structure(text: str, prefixes: Mapping[str, str]) -> dict[str, Any]:
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


def parse_query(
    text: str,
    prefixes: Mapping[str, str],
    *,
    wikidata: bool = True,
    max_chars: int = 100_000,
    max_depth: int = 64,
    strict: bool = True,
    structure: bool = True,
    structure_timeout_s: float | None = None,
) -> ParsedQuery:
    """Parse one candidate and return everything the checks need.  Never raises.

    ``strict=False`` stops after the linear-time lexical checks (what the caller can still
    afford when a worker ran out of time); ``structure=False`` skips rdflib.
    ``structure_timeout_s`` bounds rdflib (quadratic in long object lists) with SIGPROF (CPU time); it
    only applies in the main thread and is meant for the parser's worker processes: when it
    expires the structural lints are skipped with a ``lint_skipped`` note.
    """
    if not isinstance(text, str):
        text = str(text)
    out = DiagnosticBuilder(text)
    if len(text) > max_chars:
        out.add("too_large", Severity.ERROR,
                f"query is {len(text):,} characters; the limit is {max_chars:,}",
                max_chars, excerpt=text[max_chars:max_chars + 20])
        return ParsedQuery(text[:200], Form.UNKNOWN, False, tuple(out.items))
    bad = _BAD_CHARS.search(text)
    if bad:
        code_point = f"U+{ord(bad.group()):04X}"
        out.add("invalid_character", Severity.ERROR,
                f"character {code_point} is not allowed in a SPARQL query", bad.start(),
                excerpt=code_point)
        return ParsedQuery(text, Form.UNKNOWN, False, tuple(out.items))

    facts = analyse(text)
    form = _form_of(facts.first_keyword)
    if facts.escape_conflicts:
        escape_at, why = facts.escape_conflicts[0]
        escape = text[escape_at:escape_at + (10 if text[escape_at + 1:escape_at + 2] == "U" else 6)]
        out.add("ambiguous_escape", Severity.ERROR,
                f"the code point escape {escape} {why}: pyoxigraph decodes "
                "escapes only inside strings and IRIs, the SPARQL 1.1 text and Java stores "
                "everywhere, so the query could mean two things; write the character itself",
                escape_at, len(escape), excerpt=escape)
        return ParsedQuery(text, form, False, tuple(out.items), **_lexical(facts))
    if facts.depth > max_depth:
        out.add("too_deep", Severity.ERROR,
                f"brackets nest {facts.depth} deep; the limit is {max_depth}",
                facts.depth_offset)
        return ParsedQuery(text, form, False, tuple(out.items))
    if facts.first_keyword is None:
        out.add("syntax_error", Severity.ERROR, "empty query: no SELECT, ASK, CONSTRUCT or DESCRIBE",
                0 if text.strip() else None)
        return ParsedQuery(text, Form.UNKNOWN, False, tuple(out.items))
    if form is Form.UPDATE:
        keyword = facts.first_keyword
        out.add("update_operation", Severity.ERROR,
                f"{keyword.upper} is an update operation, not a query; only SELECT, ASK, "
                "CONSTRUCT and DESCRIBE are validated", keyword.start)
        return ParsedQuery(text, Form.UPDATE, False, tuple(out.items))
    if form is Form.UNKNOWN:
        keyword = facts.first_keyword
        out.add("syntax_error", Severity.ERROR,
                f"a query starts with SELECT, ASK, CONSTRUCT or DESCRIBE, not {keyword.text!r}",
                keyword.start)
        return ParsedQuery(text, Form.UNKNOWN, False, tuple(out.items))

    # Dialect of the query service: reported, then blanked so the standard parsers agree.
    blanks: list[tuple[int, int]] = []
    empties: list[tuple[int, int]] = []
    bodies: list[tuple[int, int]] = []
    if wikidata:
        for start, end, body_start, body_end in facts.named_subqueries:
            out.add("wdqs_named_subquery", Severity.INFO,
                    "named subquery (WITH { ... } AS %name) is a Wikidata query service extension",
                    start, excerpt=text[start:start + 30])
            blanks.append((start, end))
            bodies.append((body_start, body_end))
        for include in facts.includes:
            out.add("wdqs_include", Severity.INFO,
                    "INCLUDE %name is a Wikidata query service extension", include.start,
                    excerpt=include.text)
            # An empty group of the same length keeps the surrounding pattern valid.
            empties.append((include.start, include.end))
        if facts.hints:
            out.add("wdqs_hint", Severity.INFO, "hint: triples are Wikidata query service hints",
                    facts.hints[0].start)
    for service in facts.services:
        if expand_name(service.text, prefixes, facts.declared_prefixes) == LABEL_SERVICE and wikidata:
            out.add("wdqs_label_service", Severity.INFO,
                    "SERVICE wikibase:label is answered inside the Wikidata query service",
                    service.start)

    known = {**prefixes, **facts.declared_prefixes}
    unknown: dict[str, Token] = {}
    for token in facts.prefixed_names:
        prefix = token.text.split(":", 1)[0]
        if prefix not in known and prefix not in unknown:
            unknown[prefix] = token
    for prefix, token in unknown.items():
        out.add("unknown_prefix", Severity.ERROR,
                f"prefix '{prefix}:' is not declared"
                + (" and is not a Wikidata query service prefix" if wikidata else ""),
                token.start, len(token.text))
    # The query's own PREFIX lines stay in the query: passed here too they would be checked
    # as absolute IRIs, out of the context of the query's BASE (PREFIX : <#> is valid).
    parse_prefixes = dict(prefixes)
    parse_prefixes.update({p: _UNKNOWN_PREFIX_IRI + p + "/" for p in unknown})

    if not strict:
        # What the tokens tell is still known, so that SERVICE/FROM and the like are reported.
        return ParsedQuery(text, form, False, tuple(out.items), **_lexical(facts))

    if not network_fence.fenced() and network_fence.unaccounted_service(text, len(facts.services)):
        out.add("network_fence_unavailable", Severity.ERROR,
                "this process cannot be fenced off the network (no seccomp here) and the word "
                "SERVICE occurs outside the SERVICE clauses the tokenizer found, so the query is "
                "not handed to pyoxigraph")
        return ParsedQuery(text, form, False, tuple(out.items), **_lexical(facts))
    # pyoxigraph starts evaluating a leading SERVICE as soon as the query is prepared, so the
    # copy it sees has every SERVICE target replaced by a variable of the same length.
    neutral = _neutralise_services(text, facts)
    work = _blank(neutral, blanks)
    for start, end in empties:
        work = work[:start] + "{}" + " " * (end - start - 2) + work[end:]
    verdict = _strict_check(work, parse_prefixes, scope=structure)
    strict_error = verdict.error
    for body_start, body_end in bodies:
        body_error = _strict_check(neutral[body_start:body_end], parse_prefixes).error
        if body_error and strict_error is None:
            strict_error = (body_start + body_error[0], body_error[1])

    disagreement = _disagreement(facts, verdict) if strict_error is None else None
    if disagreement is not None:
        offset, why = disagreement
        out.add("lexer_disagreement", Severity.ERROR,
                f"pyoxigraph accepts this query, but the validator's tokenizer reads it "
                f"differently ({why}); it is rejected rather than guessed at", offset)
        return ParsedQuery(text, form, False, tuple(out.items), **_lexical(facts))

    label_service = any(expand_name(s.text, prefixes, facts.declared_prefixes) == LABEL_SERVICE
                        for s in facts.services)
    subquery_vars = {t.text[1:] for start, end in bodies for t in analyse(text[start:end]).tokens
                     if t.kind == "var"}
    fast: tuple[tuple[str, ...], set[str]] | None = None
    unconfirmed: tuple[tuple[str, ...], set[str]] | None = None
    if strict_error is None and form is not Form.SELECT:
        fast = ((), set())
    elif strict_error is None and verdict.projected is not None and verdict.bound is not None:
        fast = (verdict.projected, _with_labels(
            verdict.projected, set(verdict.bound) | subquery_vars, label_service))
        if any(var not in fast[1] for var in fast[0]):
            # An unbound projection is an error: rdflib must confirm it.  If rdflib cannot
            # (12,000 variables, a pattern it is quadratic in), pyoxigraph's scope stands.
            unconfirmed, fast = fast, None

    info: dict[str, Any] | None = None
    rdflib_error: BaseException | None = None
    if structure and fast is None and unconfirmed is not None and len(text) > _RDFLIB_MAX_CHARS:
        fast = unconfirmed  # rdflib would only run out of time: pyoxigraph's scope stands
    if structure and fast is None and len(text) > _RDFLIB_MAX_CHARS:
        rdflib_error = StructureTimeout(
            f"the query is longer than {_RDFLIB_MAX_CHARS:,} characters")
    elif structure and fast is None:
        normalised = normalise_for_rdflib(work, facts)
        # rdflib binds every initNs prefix into a fresh namespace manager per query (a third of
        # its time with the query service's 40 prefixes): give it only those the query uses.
        used = {t.text.split(":", 1)[0] for t in facts.prefixed_names}
        rdflib_prefixes = {k: v for k, v in parse_prefixes.items() if k in used}
        try:
            info = _with_deadline(lambda: _structure(normalised, rdflib_prefixes),
                                  structure_timeout_s)
        except RecursionError as exc:
            rdflib_error = exc
        except Exception as exc:  # rdflib raises ParseException, bare Exception, TypeError ...
            rdflib_error = exc

    if strict_error is None and facts.operand_iris:
        token = facts.operand_iris[0]
        out.add("syntax_error", Severity.ERROR,
                f"syntax error near {excerpt_at(text, token.start)!r}: {token.text} is one IRI "
                "(the longest token wins), and an IRI cannot follow another term in an "
                "expression; write spaces around '<' and '>' to compare", token.start,
                len(token.text), excerpt=token.text)
        return ParsedQuery(text, form, False, tuple(out.items), **_lexical(facts))

    if strict_error is not None:
        specific = False
        for token in _aggregates_without_alias(facts):
            out.add("aggregate_without_alias", Severity.ERROR,
                    f"{token.upper}(...) in SELECT must be written ({token.upper}(...) AS ?name)",
                    token.start)
            specific = True
        for token in _rebound_by_bind(facts):
            out.add("syntax_error", Severity.ERROR,
                    f"syntax error near {token.text!r}: {token.text} is already bound before "
                    f"BIND(... AS {token.text}); BIND must introduce a new variable", token.start,
                    len(token.text), excerpt=token.text)
            specific = True
        if info and info["ungrouped"]:
            offsets = _variable_offsets(facts)
            for var in info["ungrouped"]:
                out.add("ungrouped_variable", Severity.ERROR,
                        f"?{var} is selected but neither grouped (GROUP BY) nor aggregated",
                        offsets.get(var))
            specific = True
        if not specific:
            offset, reason = strict_error
            loc = getattr(rdflib_error, "loc", None)
            if isinstance(loc, int) and 0 <= loc <= len(text):
                offset = loc
            length = 1
            stray = _stray_word(facts)
            if stray is not None:
                offset, length = stray.start, len(stray.text)
                reason = (f"{stray.text!r} is not a SPARQL keyword, a variable (?x) or a "
                          "prefixed name (wd:Q5)")
            for bad_string in facts.unterminated:
                offset, reason = bad_string.start, "unterminated string literal"
                break
            if length == 1:  # the whole token at the offset, when there is one
                at = next((t for t in facts.tokens if t.start == offset), None)
                length = len(at.text) if at is not None else 1
            near = text[offset:offset + length] if length > 1 else excerpt_at(text, offset)
            if len(near) > 40:
                near = near[:40] + "..."
            out.add("syntax_error", Severity.ERROR, f"syntax error near {near!r}: {reason}", offset,
                    length, excerpt=near)
        return ParsedQuery(text, form, False, tuple(out.items), **_lexical(facts))

    if rdflib_error is not None and unconfirmed is not None:
        fast = unconfirmed
    elif rdflib_error is not None:
        if isinstance(rdflib_error, RecursionError):
            kind = "nesting too deep for rdflib"
        elif isinstance(rdflib_error, StructureTimeout):
            kind = str(rdflib_error)
        else:
            kind = type(rdflib_error).__name__
        out.add("lint_skipped", Severity.INFO,
                f"valid SPARQL; structural checks skipped (rdflib could not read it: {kind})")
    if fast is not None and info is None:
        # pyoxigraph's projection and scope, grouping read from the tokens: rdflib not needed.
        info = {"projected": fast[0], "bound": fast[1], "ungrouped": (),
                **_lexical_grouping(facts)}
    bound = set(info["bound"]) if info else set()
    if info:
        bound = (bound | subquery_vars) - _negated_only(facts.tokens)
        bound = _with_labels(info["projected"], bound, label_service)
    return ParsedQuery(
        text=text,
        form=form,
        valid_syntax=not out.has_error,
        diagnostics=tuple(out.items),
        structure_known=info is not None,
        projected=info["projected"] if info else (),
        bound=frozenset(bound),
        group_by=info["group_by"] if info else None,
        ungrouped=info["ungrouped"] if info else (),
        aggregates=info["aggregates"] if info else (),
        **_lexical(facts),
    )


def _disagreement(facts: LexicalFacts, verdict: _Strict) -> tuple[int | None, str] | None:
    """Where the tokens contradict pyoxigraph's acceptance of the query: then what the
    lexical checks (SERVICE, FROM, the fence) saw is not what pyoxigraph or an endpoint
    would run, so the query must fail closed."""
    if facts.unterminated:
        return facts.unterminated[0].start, "an unterminated string"
    if facts.unbalanced is not None:
        return facts.unbalanced.start, f"{facts.unbalanced.text!r} does not pair up"
    if verdict.unfenced:
        return None, "no WHERE group found"
    return None


def _rebound_by_bind(facts: LexicalFacts) -> list[Token]:
    """``?v`` in ``BIND(... AS ?v)`` when ``?v`` already occurs earlier in the same group.

    Only consulted once pyoxigraph has rejected the query: a lexical approximation of the
    scoping rule, used to point at the variable rather than at the end of the group.
    """
    tokens = facts.tokens
    found: list[Token] = []
    if "BIND" not in facts.words:
        return found
    # Per open group, the variables seen in it so far (nested groups included), so that
    # each BIND is checked in constant time: thousands of BINDs stay linear.
    groups: list[set[str]] = []
    for i, token in enumerate(tokens):
        if token.text == "{" and token.kind == "punct":
            groups.append(set())
        elif token.text == "}" and token.kind == "punct" and groups:
            inner = groups.pop()
            if groups:
                groups[-1] |= inner
        elif token.kind == "word" and token.upper == "BIND" and groups and i + 1 < len(tokens) \
                and tokens[i + 1].text == "(":
            close = matching_bracket(tokens, i + 1)
            alias = tokens[close - 1] if 2 <= close < len(tokens) else None
            if alias is None or alias.kind != "var" or tokens[close - 2].upper != "AS":
                continue
            if alias.text[1:] in groups[-1]:
                found.append(alias)
        elif token.kind == "var" and groups:
            groups[-1].add(token.text[1:])
    return found


def _negated_only(tokens: list[Token]) -> set[str]:
    """Variables of a SELECT's WHERE group that occur there only inside ``MINUS { }`` or
    ``(NOT) EXISTS { }``: such a group only removes solutions, it never binds (SPARQL 1.1,
    sections 8 and 18.2), although rdflib's algebra counts its variables as bound."""
    keyword = _query_keyword(tokens)
    if keyword is None or tokens[keyword].upper != "SELECT":
        return set()
    group = _where_group(tokens, keyword)
    if group is None:
        return set()
    inside: set[str] = set()
    outside: set[str] = set()
    negations: list[int] = []  # brace depth of each open negated group
    depth = 0
    negation_next = False
    for i in range(group[0] + 1, group[1]):
        token = tokens[i]
        if token.kind == "word" and token.upper in ("MINUS", "EXISTS") \
                and tokens[i - 1].text not in ("@", "-") and tokens[i + 1].text == "{":
            # (not the "minus" of a language tag such as "a"@en-minus)
            negation_next = True
        elif token.text == "{":
            depth += 1
            if negation_next:
                negations.append(depth)
                negation_next = False
        elif token.text == "}":
            if negations and negations[-1] == depth:
                negations.pop()
            depth -= 1
        elif token.kind == "var":
            (inside if negations else outside).add(token.text[1:])
    return inside - outside - _bound_outside_where(tokens, group)


def _with_labels(projected: Iterable[str], bound: set[str], label_service: bool) -> set[str]:
    """The label service binds ``?xLabel`` (``Description``, ``AltLabel``) for a bound ``?x``."""
    if label_service:
        for var in projected:
            for suffix in ("Label", "Description", "AltLabel"):
                if var.endswith(suffix) and var[: -len(suffix)] in bound:
                    bound.add(var)
    return bound


def _lexical_grouping(facts: LexicalFacts) -> dict[str, Any]:
    """``group_by`` and ``aggregates`` of a valid query, from its tokens.

    ``group_by``: the variables of the GROUP BY clause (``()`` when aggregates group the
    whole result, ``None`` without aggregation); ``aggregates``: every aggregate called.
    """
    tokens = facts.tokens
    aggregates = tuple(t.upper for i, t in enumerate(tokens[:-1])
                       if t.kind == "word" and t.upper in AGGREGATES and tokens[i + 1].text == "(")
    group_by: tuple[str, ...] | None = () if aggregates else None
    for i, token in enumerate(tokens[:-1]):
        if token.upper == "GROUP" and tokens[i + 1].upper == "BY":
            names: list[str] = []
            depth = 0
            for k in range(i + 2, len(tokens)):
                t = tokens[k]
                if t.text == "(":
                    depth += 1
                elif t.text == ")":
                    depth -= 1
                elif depth <= 0 and (t.kind == "word" or t.text == "}"):
                    break
                elif t.kind == "var" and (depth == 0 or tokens[k - 1].upper == "AS"):
                    names.append(t.text[1:])
            group_by = tuple(names)
            break
    return {"group_by": group_by, "aggregates": aggregates}


def _stray_word(facts: LexicalFacts) -> Token | None:
    """The first bare word that is not SPARQL (``t1417656573``), for a precise error location.

    Only consulted once the query is known to be invalid.  Language tags (``@en-GB``) and the
    query service's ``%name`` are words too and are skipped.
    """
    tokens = facts.tokens
    for i, token in enumerate(tokens):
        if token.kind != "word" or token.upper in SPARQL_WORDS:
            continue
        prev = tokens[i - 1] if i else None
        if prev is not None and prev.end == token.start and prev.text in ("@", "-", "%"):
            continue
        return token
    return None


def _lexical(facts: LexicalFacts) -> dict[str, Any]:
    """The ParsedQuery fields the tokens alone decide (known even when parsing fails)."""
    clause = _select_clause(facts)
    return {
        "select_star": any(t.text == "*" for t in clause[:3]),
        "services": tuple(s.text for s in facts.services),
        "datasets": tuple(d.text for d in facts.datasets),
        "ids": _ids(facts),
        "has_limit": "LIMIT" in facts.words,
        "prefixes_used": _prefixes_used(facts),
    }


def _prefixes_used(facts: LexicalFacts) -> tuple[str, ...]:
    return tuple(sorted({t.text.split(":", 1)[0] for t in facts.prefixed_names}))


def _variable_offsets(facts: LexicalFacts) -> dict[str, int]:
    """Where each variable first occurs."""
    offsets: dict[str, int] = {}
    for token in facts.tokens:
        if token.kind == "var":
            offsets.setdefault(token.text[1:], token.start)
    return offsets


def _ids(facts: LexicalFacts) -> tuple[str, ...]:
    ids = []
    for token in facts.prefixed_names:
        match = _ID_NAME.match(token.text)
        if match:
            ids.append(match.group(1))
    return tuple(dict.fromkeys(ids))
