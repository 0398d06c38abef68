"""Parsing one candidate: limits, dialect, strict validity, structure, in named phases.

:func:`parse_query` runs these phases in turn; each may end the parse with its diagnostics:

1. **limits** (:func:`_refuse_early`): size and illegal characters, before any tokenizing;
2. **lexical refusals** (:func:`_refuse_lexically`): the **lexer** (:mod:`.lexer`) answers in
   linear time: ambiguous escapes, nesting depth, no query, update operations;
3. **dialect and prefixes** (:func:`_read_dialect`, :func:`_check_prefixes`): query-service
   extensions are noted and blanked so the standard parsers agree; undeclared prefixes;
4. **strict validity** (:func:`_strict_phase`, :mod:`.strict`): **pyoxigraph**'s SPARQL 1.1
   parser decides validity; a valid SELECT's projection and in-scope variables come with it;
   where the tokens contradict it (:func:`_disagreement`), or the longest-token rule
   pyoxigraph's PEG parser misses applies (``FILTER(?x<?a&&?b>?y)``), the query fails closed;
5. **scope** (:func:`_scope_from_pyoxigraph`, :mod:`.scope`): projected and bound variables
   from pyoxigraph, aliases and a trailing VALUES from the tokens, grouping and aggregates
   from the tokens (:mod:`.clauses`);
6. **structure** (:func:`_structure_phase`, :mod:`.structure`): **rdflib** is only consulted
   when that is not enough: when pyoxigraph rejects the query (its error location, the start
   of the offending construct, is the better one to report, and it tells which variables are
   ungrouped), when a projected variable looks unbound (rdflib must confirm before
   ``unbound_projection``, an error, is reported), or when pyoxigraph gave no projection.
   This keeps rdflib, at 3-6 ms a query, off the path of almost every valid query;
7. **verdict**: :func:`.rejection.explain_rejection` for an invalid query, :func:`_valid` otherwise.

A query pyoxigraph accepts is never rejected because rdflib fails on it: the structural lints
are then skipped with an ``info`` note.  Nothing here evaluates a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kgqa_validator import network_fence
from kgqa_validator.diagnostics import DiagnosticBuilder, excerpt_at
from kgqa_validator.parsing.clauses import form_of, lexical_fields, lexical_grouping
from kgqa_validator.parsing.lexer import LexicalFacts, Token, analyse, expand_name
from kgqa_validator.parsing.rejection import explain_rejection
from kgqa_validator.parsing.scope import negated_only, with_labels
from kgqa_validator.parsing.strict import StrictVerdict, neutralise_services, strict_check
from kgqa_validator.parsing.structure import (
    RDFLIB_MAX_CHARS,
    StructureTimeout,
    normalise_for_rdflib,
    read_structure,
    with_deadline,
)
from kgqa_validator.prefixes import LABEL_SERVICE
from kgqa_validator.types import Form, ParsedQuery, Severity

PRODUCER = "parse"
_BAD_CHARS = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_UNKNOWN_PREFIX_IRI = "http://kgqa-validator.invalid/unknown-prefix/"
# What pyoxigraph told of a SELECT's variables: (projected, bound).
_Scope = tuple[tuple[str, ...], set[str]]


@dataclass
class _Dialect:
    """The query-service extensions found, as ranges of the user's text."""

    blanks: list[tuple[int, int]] = field(default_factory=list)  # blanked for the parsers
    empties: list[tuple[int, int]] = field(default_factory=list)  # replaced by an empty group
    bodies: list[tuple[int, int]] = field(default_factory=list)  # named subqueries, parsed apart


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
    out = DiagnosticBuilder(text, PRODUCER)
    refused = _refuse_early(text, out, max_chars)
    if refused is not None:
        return refused
    facts = analyse(text)
    form = form_of(facts.first_keyword)
    refused = _refuse_lexically(text, facts, form, out, max_depth)
    if refused is not None:
        return refused
    dialect = _read_dialect(text, facts, prefixes, wikidata, out)
    parse_prefixes = _check_prefixes(facts, prefixes, wikidata, out)

    def lexical_verdict() -> ParsedQuery:
        return ParsedQuery(text, form, False, tuple(out.items), **lexical_fields(facts))

    if not strict:
        # What the tokens tell is still known, so that SERVICE/FROM and the like are reported.
        return lexical_verdict()
    if not network_fence.fenced() and network_fence.unaccounted_service(text, len(facts.services)):
        out.add("network_fence_unavailable", Severity.ERROR,
                "this process cannot be fenced off the network (no seccomp here) and the word "
                "SERVICE occurs outside the SERVICE clauses the tokenizer found, so the query is "
                "not handed to pyoxigraph")
        return lexical_verdict()

    work, verdict, strict_error = _strict_phase(text, facts, dialect, parse_prefixes, structure)
    disagreement = _disagreement(facts, verdict) if strict_error is None else None
    if disagreement is not None:
        offset, why = disagreement
        out.add("lexer_disagreement", Severity.ERROR,
                f"pyoxigraph accepts this query, but the validator's tokenizer reads it "
                f"differently ({why}); it is rejected rather than guessed at", offset)
        return lexical_verdict()
    if strict_error is None and facts.operand_iris:
        token = facts.operand_iris[0]
        out.add("syntax_error", Severity.ERROR,
                f"syntax error near {excerpt_at(text, token.start)!r}: {token.text} is one IRI "
                "(the longest token wins), and an IRI cannot follow another term in an "
                "expression; write spaces around '<' and '>' to compare", token.start,
                len(token.text), excerpt=token.text)
        return lexical_verdict()

    label_service = any(expand_name(s.text, prefixes, facts.declared_prefixes) == LABEL_SERVICE
                        for s in facts.services)
    subquery_vars = {t.text[1:] for start, end in dialect.bodies
                     for t in analyse(text[start:end]).tokens if t.kind == "var"}
    fast, unconfirmed = _scope_from_pyoxigraph(form, verdict, strict_error, subquery_vars,
                                               label_service)
    info: dict[str, Any] | None = None
    rdflib_error: BaseException | None = None
    if structure and fast is None and unconfirmed is not None and len(text) > RDFLIB_MAX_CHARS:
        fast = unconfirmed  # rdflib would only run out of time: pyoxigraph's scope stands
    if structure and fast is None:
        info, rdflib_error = _structure_phase(text, work, facts, parse_prefixes,
                                              structure_timeout_s)

    if strict_error is not None:
        explain_rejection(text, facts, strict_error, info, rdflib_error, out)
        return lexical_verdict()
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
                **lexical_grouping(facts)}
    return _valid(text, form, facts, out, info, subquery_vars, label_service)


def _refuse_early(text: str, out: DiagnosticBuilder, max_chars: int) -> ParsedQuery | None:
    """Phase 1, before any tokenizing: a text too large, or with a character no query holds."""
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
    return None


def _refuse_lexically(text: str, facts: LexicalFacts, form: Form, out: DiagnosticBuilder,
                      max_depth: int) -> ParsedQuery | None:
    """Phase 2, from the tokens: an ambiguous escape, too deep a nesting, no query form."""
    if facts.escape_conflicts:
        escape_at, why = facts.escape_conflicts[0]
        escape = text[escape_at:escape_at + (10 if text[escape_at + 1:escape_at + 2] == "U" else 6)]
        out.add("ambiguous_escape", Severity.ERROR,
                f"the code point escape {escape} {why}: pyoxigraph decodes "
                "escapes only inside strings and IRIs, the SPARQL 1.1 text and Java stores "
                "everywhere, so the query could mean two things; write the character itself",
                escape_at, len(escape), excerpt=escape)
        return ParsedQuery(text, form, False, tuple(out.items), **lexical_fields(facts))
    if facts.depth > max_depth:
        out.add("too_deep", Severity.ERROR,
                f"brackets nest {facts.depth} deep; the limit is {max_depth}",
                facts.depth_offset)
        return ParsedQuery(text, form, False, tuple(out.items))
    keyword = facts.first_keyword
    if keyword is None:
        out.add("syntax_error", Severity.ERROR, "empty query: no SELECT, ASK, CONSTRUCT or DESCRIBE",
                0 if text.strip() else None)
        return ParsedQuery(text, Form.UNKNOWN, False, tuple(out.items))
    if form is Form.UPDATE:
        out.add("update_operation", Severity.ERROR,
                f"{keyword.upper} is an update operation, not a query; only SELECT, ASK, "
                "CONSTRUCT and DESCRIBE are validated", keyword.start)
        return ParsedQuery(text, Form.UPDATE, False, tuple(out.items))
    if form is Form.UNKNOWN:
        out.add("syntax_error", Severity.ERROR,
                f"a query starts with SELECT, ASK, CONSTRUCT or DESCRIBE, not {keyword.text!r}",
                keyword.start)
        return ParsedQuery(text, Form.UNKNOWN, False, tuple(out.items))
    return None


def _read_dialect(text: str, facts: LexicalFacts, prefixes: Mapping[str, str], wikidata: bool,
                  out: DiagnosticBuilder) -> _Dialect:
    """Phase 3a: the query service's dialect, reported, and where to blank it so that the
    standard parsers agree."""
    dialect = _Dialect()
    if wikidata:
        for start, end, body_start, body_end in facts.named_subqueries:
            out.add("wdqs_named_subquery", Severity.INFO,
                    "named subquery (WITH { ... } AS %name) is a Wikidata query service extension",
                    start, excerpt=text[start:start + 30])
            dialect.blanks.append((start, end))
            dialect.bodies.append((body_start, body_end))
        for include in facts.includes:
            out.add("wdqs_include", Severity.INFO,
                    "INCLUDE %name is a Wikidata query service extension", include.start,
                    excerpt=include.text)
            # An empty group of the same length keeps the surrounding pattern valid.
            dialect.empties.append((include.start, include.end))
        if facts.hints:
            out.add("wdqs_hint", Severity.INFO, "hint: triples are Wikidata query service hints",
                    facts.hints[0].start)
    for service in facts.services:
        if expand_name(service.text, prefixes, facts.declared_prefixes) == LABEL_SERVICE and wikidata:
            out.add("wdqs_label_service", Severity.INFO,
                    "SERVICE wikibase:label is answered inside the Wikidata query service",
                    service.start)
    return dialect


def _check_prefixes(facts: LexicalFacts, prefixes: Mapping[str, str], wikidata: bool,
                    out: DiagnosticBuilder) -> dict[str, str]:
    """Phase 3b: undeclared prefixes are errors; the prefixes to hand the parsers."""
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
    return parse_prefixes


def _strict_phase(text: str, facts: LexicalFacts, dialect: _Dialect,
                  parse_prefixes: Mapping[str, str], scope: bool,
                  ) -> tuple[str, StrictVerdict, tuple[int, str] | None]:
    """Phase 4: pyoxigraph's verdict on the query and on each named subquery.

    Returns the copy the parsers read (SERVICE targets masked, dialect blanked), the
    verdict, and the first error (offset in the user's text, reason).
    """
    # pyoxigraph starts evaluating a leading SERVICE as soon as the query is prepared, so the
    # copy it sees has every SERVICE target replaced by a variable of the same length.
    neutral = neutralise_services(text, facts)
    work = _blank(neutral, dialect.blanks)
    for start, end in dialect.empties:
        work = work[:start] + "{}" + " " * (end - start - 2) + work[end:]
    verdict = strict_check(work, parse_prefixes, scope=scope)
    strict_error = verdict.error
    for body_start, body_end in dialect.bodies:
        body_error = strict_check(neutral[body_start:body_end], parse_prefixes).error
        if body_error and strict_error is None:
            strict_error = (body_start + body_error[0], body_error[1])
    return work, verdict, strict_error


def _scope_from_pyoxigraph(form: Form, verdict: StrictVerdict, strict_error: tuple[int, str] | None,
                           subquery_vars: set[str], label_service: bool,
                           ) -> tuple[_Scope | None, _Scope | None]:
    """Phase 5: the scope pyoxigraph's answers give, as ``(fast, unconfirmed)``: ``fast`` when
    it is enough, ``unconfirmed`` when a projected variable looks unbound (an error that
    rdflib must confirm)."""
    if strict_error is None and form is not Form.SELECT:
        return ((), set()), None
    if strict_error is None and verdict.projected is not None and verdict.bound is not None:
        fast = (verdict.projected, with_labels(
            verdict.projected, set(verdict.bound) | subquery_vars, label_service))
        if any(var not in fast[1] for var in fast[0]):
            # An unbound projection is an error: rdflib must confirm it.  If rdflib cannot
            # (12,000 variables, a pattern it is quadratic in), pyoxigraph's scope stands.
            return None, fast
        return fast, None
    return None, None


def _structure_phase(text: str, work: str, facts: LexicalFacts, parse_prefixes: Mapping[str, str],
                     timeout_s: float | None) -> tuple[dict[str, Any] | None, BaseException | None]:
    """Phase 6: rdflib's reading of the structure, or why it could not give one."""
    if len(text) > RDFLIB_MAX_CHARS:
        return None, StructureTimeout(f"the query is longer than {RDFLIB_MAX_CHARS:,} characters")
    normalised = normalise_for_rdflib(work, facts)
    # rdflib binds every initNs prefix into a fresh namespace manager per query (a third of
    # its time with the query service's 40 prefixes): give it only those the query uses.
    used = {t.text.split(":", 1)[0] for t in facts.prefixed_names}
    rdflib_prefixes = {k: v for k, v in parse_prefixes.items() if k in used}
    try:
        return with_deadline(lambda: read_structure(normalised, rdflib_prefixes), timeout_s), None
    except RecursionError as exc:
        return None, exc
    except Exception as exc:  # rdflib raises ParseException, bare Exception, TypeError ...
        return None, exc


def _valid(text: str, form: Form, facts: LexicalFacts, out: DiagnosticBuilder,
           info: dict[str, Any] | None, subquery_vars: set[str], label_service: bool,
           ) -> ParsedQuery:
    """Phase 7b: the ParsedQuery of a query pyoxigraph accepted."""
    bound = set(info["bound"]) if info else set()
    if info:
        bound = (bound | subquery_vars) - negated_only(facts.tokens)
        bound = with_labels(info["projected"], bound, label_service)
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
        **lexical_fields(facts),
    )



def _disagreement(facts: LexicalFacts, verdict: StrictVerdict) -> tuple[int | None, str] | None:
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


def _blank(text: str, ranges: Iterable[tuple[int, int]]) -> str:
    """Replace ranges with spaces (newlines kept) so no other character moves."""
    chars = list(text)
    for start, end in ranges:
        for i in range(start, min(end, len(chars))):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)
