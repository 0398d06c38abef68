"""Which variables are in scope where: what the lints' ``unbound_projection`` rests on.

pyoxigraph and rdflib report the variables a WHERE group binds; the token-level rules here
correct and complete them: a SELECT also binds outside its WHERE group (``(... AS ?v)``,
GROUP BY aliases, a trailing ``VALUES``); a variable seen only inside ``MINUS { }`` or
``(NOT) EXISTS { }`` is never bound (rdflib's algebra counts it); the label service binds
``?xLabel`` for a bound ``?x``; and ``BIND(... AS ?v)`` may not rebind a variable of its group.
"""

from __future__ import annotations

from collections.abc import Iterable

from kgqa_validator.parsing.clauses import query_keyword, where_group
from kgqa_validator.parsing.lexer import LexicalFacts, Token, matching_bracket


def bound_outside_where(tokens: list[Token], group: tuple[int, int]) -> set[str]:
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


def negated_only(tokens: list[Token]) -> set[str]:
    """Variables of a SELECT's WHERE group that occur there only inside ``MINUS { }`` or
    ``(NOT) EXISTS { }``: such a group only removes solutions, it never binds (SPARQL 1.1,
    sections 8 and 18.2), although rdflib's algebra counts its variables as bound."""
    keyword = query_keyword(tokens)
    if keyword is None or tokens[keyword].upper != "SELECT":
        return set()
    group = where_group(tokens, keyword)
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
    return inside - outside - bound_outside_where(tokens, group)


def with_labels(projected: Iterable[str], bound: set[str], label_service: bool) -> set[str]:
    """The label service binds ``?xLabel`` (``Description``, ``AltLabel``) for a bound ``?x``."""
    if label_service:
        for var in projected:
            for suffix in ("Label", "Description", "AltLabel"):
                if var.endswith(suffix) and var[: -len(suffix)] in bound:
                    bound.add(var)
    return bound


def rebound_by_bind(facts: LexicalFacts) -> list[Token]:
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


def first_occurrences(tokens: Iterable[Token]) -> dict[str, Token]:
    """Each variable's first token, by name without ``?`` / ``$``."""
    first: dict[str, Token] = {}
    for token in tokens:
        if token.kind == "var":
            first.setdefault(token.text[1:], token)
    return first


def variable_offsets(facts: LexicalFacts) -> dict[str, int]:
    """Where each variable first occurs."""
    return {name: token.start for name, token in first_occurrences(facts.tokens).items()}
