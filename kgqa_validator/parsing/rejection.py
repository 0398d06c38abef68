"""Why pyoxigraph rejected a query, said as precisely as the tokens allow.

pyoxigraph reports where its parser noticed a problem, often well after the cause, and in
the terms of its grammar.  Once a query is known to be invalid, the token-level rules here
name the cause where they can: an aggregate without ``AS``, a ``BIND`` that rebinds, an
ungrouped variable (from rdflib), a bare word that is not SPARQL, an unterminated string.
"""

from __future__ import annotations

from typing import Any

from kgqa_validator.diagnostics import DiagnosticBuilder, excerpt_at
from kgqa_validator.parsing.clauses import aggregates_without_alias
from kgqa_validator.parsing.lexer import SPARQL_WORDS, LexicalFacts, Token
from kgqa_validator.parsing.scope import rebound_by_bind, variable_offsets
from kgqa_validator.types import Severity


def explain_rejection(text: str, facts: LexicalFacts, strict_error: tuple[int, str],
                       info: dict[str, Any] | None, rdflib_error: BaseException | None,
                       out: DiagnosticBuilder) -> None:
    """The diagnostics of a query pyoxigraph rejected, as precise as can be told."""
    specific = False
    for token in aggregates_without_alias(facts):
        out.add("aggregate_without_alias", Severity.ERROR,
                f"{token.upper}(...) in SELECT must be written ({token.upper}(...) AS ?name)",
                token.start)
        specific = True
    for token in rebound_by_bind(facts):
        out.add("syntax_error", Severity.ERROR,
                f"syntax error near {token.text!r}: {token.text} is already bound before "
                f"BIND(... AS {token.text}); BIND must introduce a new variable", token.start,
                len(token.text), excerpt=token.text)
        specific = True
    if info and info["ungrouped"]:
        offsets = variable_offsets(facts)
        for var in info["ungrouped"]:
            out.add("ungrouped_variable", Severity.ERROR,
                    f"?{var} is selected but neither grouped (GROUP BY) nor aggregated",
                    offsets.get(var))
        specific = True
    if specific:
        return
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
