"""Parsing one candidate: limits, dialect, strict validity (pyoxigraph), structure (rdflib).

Who decides what:

* the **lexer** (:mod:`.lexer`) answers first, in linear time: size, illegal characters,
  nesting depth, update operations, undeclared prefixes, query-service dialect;
* **pyoxigraph**'s SPARQL 1.1 parser decides *validity* (it passes the W3C syntax suite and
  accepts the query-service spellings rdflib rejects);
* **rdflib** reads the *structure* (projection, bound variables, grouping, aggregates) from a
  copy normalised without moving any character, so its positions are the user's; where
  pyoxigraph rejects a query rdflib's error location (the start of the offending construct) is
  reported, because pyoxigraph's points past it.

A query pyoxigraph accepts is never rejected because rdflib fails on it: the structural lints
are then skipped with an ``info`` note.  Nothing here evaluates a query: pyoxigraph is asked
for a lazily evaluated result that is dropped unread, and ASK (which pyoxigraph evaluates
eagerly) is checked as the equivalent SELECT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kgqa_validator.parsing.lexer import (
    AGGREGATES,
    QUERY_KEYWORDS,
    UPDATE_KEYWORDS,
    LexicalFacts,
    LineIndex,
    Token,
    analyse,
)
from kgqa_validator.prefixes import LABEL_SERVICE
from kgqa_validator.types import Diagnostic, Form, ParsedQuery, Severity, Span

PRODUCER = "parse"
_BAD_CHARS = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_OX_POSITION = re.compile(r"error at (\d+):(\d+): (.*)", re.DOTALL)
_ID_NAME = re.compile(r"^(?:[A-Za-z]+):([QPL]\d+)$")
_UNKNOWN_PREFIX_IRI = "http://kgqa-validator.invalid/unknown-prefix/"


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


def _strict_parse(text: str, form: Form, prefixes: Mapping[str, str]) -> str | None:
    """Return pyoxigraph's error message, or ``None`` when the query is valid SPARQL 1.1."""
    import pyoxigraph

    store = pyoxigraph.Store()
    try:
        result = store.query(text, prefixes=dict(prefixes))
    except SyntaxError as exc:
        return str(exc)
    except (ValueError, OSError, RuntimeError) as exc:  # pragma: no cover - defensive
        return f"{type(exc).__name__}: {exc}"
    del result  # lazily evaluated: never iterated, so nothing runs
    return None


def _ask_as_select(text: str, ask: Token) -> tuple[str, int]:
    """ASK is evaluated eagerly by pyoxigraph; check the equivalent SELECT instead."""
    replacement = "SELECT (1 AS ?kgqa_ask_)"
    return text[:ask.start] + replacement + text[ask.end:], len(replacement) - len(ask.text)


def _short_reason(message: str) -> str:
    """pyoxigraph's 'expected one of ...' can list 60 alternatives: keep the first few."""
    message = " ".join(message.split())
    if message.startswith("expected one of "):
        items = [i.strip() for i in message[len("expected one of "):].split(",")]
        words = [i for i in items if i and not i.startswith("[") and "'" not in i][:8]
        return "expected one of " + ", ".join(words) + (" ..." if len(items) > len(words) else "")
    return message[:200]


def _strict_error_offset(message: str, text: str, shift: tuple[int, int, int] | None) -> tuple[int, str]:
    match = _OX_POSITION.match(message)
    if not match:
        return len(text.rstrip()), _short_reason(message)
    line, column = int(match.group(1)), int(match.group(2))
    if shift is not None and line == shift[0] and column > shift[1]:
        column -= shift[2]
    offset = LineIndex(text).offset(line, column)
    # pyoxigraph points past the failure (often at the end of input): step back onto a token.
    offset = min(offset, len(text))
    while offset > 0 and (offset >= len(text) or text[offset].isspace()):
        offset -= 1
    return offset, _short_reason(match.group(3))


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


def _structure(text: str, prefixes: Mapping[str, str]) -> dict[str, Any]:
    """Read projection, bound variables and grouping from rdflib's algebra."""
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
) -> ParsedQuery:
    """Parse one candidate and return everything the checks need.  Never raises.

    ``strict=False`` stops after the linear-time lexical checks (what the caller can still
    afford when a worker ran out of time: both parsers can take super-linear time, pyoxigraph
    in its query planner on long object lists); ``structure=False`` skips rdflib.
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
        if _expand(service.text, facts, prefixes) == LABEL_SERVICE and wikidata:
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
    parse_prefixes = dict(known)
    parse_prefixes.update({p: _UNKNOWN_PREFIX_IRI + p + "/" for p in unknown})

    if not strict:
        return ParsedQuery(text, form, False, tuple(out.items), ids=_ids(facts))

    work = _blank(text, blanks)
    for start, end in empties:
        work = work[:start] + "{}" + " " * (end - start - 2) + work[end:]
    strict_text, shift = work, None
    keyword = facts.first_keyword
    if form is Form.ASK:
        strict_text, delta = _ask_as_select(work, keyword)
        line, column = out.lines.position(keyword.start)
        shift = (line, column + len(keyword.text), delta)
    strict_error = _strict_parse(strict_text, form, parse_prefixes)
    for body_start, body_end in bodies:
        body_error = _strict_parse(text[body_start:body_end], Form.SELECT, parse_prefixes)
        if body_error and strict_error is None:
            offset, reason = _strict_error_offset(body_error, text[body_start:body_end], None)
            strict_error = f"error at {out.lines.position(body_start + offset)[0]}:" \
                f"{out.lines.position(body_start + offset)[1]}: {reason}"

    info: dict[str, Any] | None = None
    rdflib_error: BaseException | None = None
    if structure:
        try:
            info = _structure(normalise_for_rdflib(work, facts), parse_prefixes)
        except RecursionError as exc:
            rdflib_error = exc
        except Exception as exc:  # rdflib raises ParseException, bare Exception, TypeError ...
            rdflib_error = exc

    if strict_error is not None:
        specific = False
        for token in _aggregates_without_alias(facts):
            out.add("aggregate_without_alias", Severity.ERROR,
                    f"{token.upper}(...) in SELECT must be written ({token.upper}(...) AS ?name)",
                    token.start)
            specific = True
        if info and info["ungrouped"]:
            for var in info["ungrouped"]:
                out.add("ungrouped_variable", Severity.ERROR,
                        f"?{var} is selected but neither grouped (GROUP BY) nor aggregated",
                        _variable_offset(facts, var))
            specific = True
        if not specific:
            offset, reason = _strict_error_offset(strict_error, text, shift)
            loc = getattr(rdflib_error, "loc", None)
            if isinstance(loc, int) and 0 <= loc <= len(text):
                offset = loc
            for bad_string in facts.unterminated:
                offset, reason = bad_string.start, "unterminated string literal"
                break
            near = excerpt_at(text, offset)
            out.add("syntax_error", Severity.ERROR, f"syntax error near {near!r}: {reason}", offset)
        return ParsedQuery(text, form, False, tuple(out.items), ids=_ids(facts),
                           prefixes_used=_prefixes_used(facts))

    if rdflib_error is not None:
        kind = "nesting too deep for rdflib" if isinstance(rdflib_error, RecursionError) \
            else f"{type(rdflib_error).__name__}"
        out.add("lint_skipped", Severity.INFO,
                f"valid SPARQL; structural checks skipped (rdflib could not read it: {kind})")
    bound = set(info["bound"]) if info else set()
    for body_start, body_end in bodies:
        bound.update(t.text[1:] for t in analyse(text[body_start:body_end]).tokens if t.kind == "var")
    if info and any(_expand(s.text, facts, prefixes) == LABEL_SERVICE for s in facts.services):
        for var in info["projected"]:
            for suffix in ("Label", "Description", "AltLabel"):
                if var.endswith(suffix) and var[: -len(suffix)] in bound:
                    bound.add(var)
    clause = _select_clause(facts)
    return ParsedQuery(
        text=text,
        form=form,
        valid_syntax=not out.has_error,
        diagnostics=tuple(out.items),
        structure_known=info is not None,
        projected=info["projected"] if info else (),
        bound=frozenset(bound),
        select_star=any(t.text == "*" for t in clause[:3]),
        group_by=info["group_by"] if info else None,
        ungrouped=info["ungrouped"] if info else (),
        aggregates=info["aggregates"] if info else (),
        services=tuple(s.text for s in facts.services),
        datasets=tuple(d.text for d in facts.datasets),
        ids=_ids(facts),
        has_limit=any(t.upper == "LIMIT" for t in facts.tokens if t.kind == "word"),
        prefixes_used=_prefixes_used(facts),
    )


def _prefixes_used(facts: LexicalFacts) -> tuple[str, ...]:
    return tuple(sorted({t.text.split(":", 1)[0] for t in facts.prefixed_names}))


def _variable_offset(facts: LexicalFacts, name: str) -> int | None:
    for token in facts.tokens:
        if token.kind == "var" and token.text[1:] == name:
            return token.start
    return None


def _expand(name: str, facts: LexicalFacts, prefixes: Mapping[str, str]) -> str:
    if name.startswith("<") and name.endswith(">"):
        return name[1:-1]
    prefix, _, local = name.partition(":")
    base = facts.declared_prefixes.get(prefix, prefixes.get(prefix))
    return f"{base}{local}" if base is not None else name


def _ids(facts: LexicalFacts) -> tuple[str, ...]:
    ids = []
    for token in facts.prefixed_names:
        match = _ID_NAME.match(token.text)
        if match:
            ids.append(match.group(1))
    return tuple(dict.fromkeys(ids))
