"""The clauses of a query, read from its tokens: form, SELECT clause, WHERE group, grouping.

What the parser and the lints both need to know about where things are in a query, derived
once, here: the form's keyword (:func:`query_keyword`, :func:`form_of`), the SELECT clause
(:func:`select_clause`, :func:`projects_only_a_count`, :func:`aggregates_without_alias`),
the WHERE group's braces (:func:`where_group`, :func:`short_construct`), GROUP BY and the
aggregates (:func:`lexical_grouping`), and the ``SERVICE`` / ``FROM`` clauses
(:func:`clause_targets`).  All of it is linear in the number of tokens and never fails: a
clause that is not there is ``None`` or empty.
"""

from __future__ import annotations

from typing import Any

from kgqa_validator.ids import PREFIXED_ID
from kgqa_validator.parsing.lexer import (
    AGGREGATES,
    QUERY_KEYWORDS,
    UPDATE_KEYWORDS,
    LexicalFacts,
    Token,
    clause_target,
    matching_bracket,
)
from kgqa_validator.types import Form


def form_of(keyword: Token | None) -> Form:
    if keyword is None:
        return Form.UNKNOWN
    upper = keyword.upper
    if upper in QUERY_KEYWORDS:
        return Form(upper.lower())
    if upper in UPDATE_KEYWORDS or upper == "WITH":
        return Form.UPDATE
    return Form.UNKNOWN


def query_keyword(tokens: list[Token]) -> int | None:
    """Index of the query form's keyword (the first word after the prologue), if it is one."""
    keyword = next((i for i, t in enumerate(tokens)
                    if t.kind == "word" and t.upper not in ("PREFIX", "BASE")), None)
    return keyword if keyword is not None and tokens[keyword].upper in QUERY_KEYWORDS else None


def where_group(tokens: list[Token], keyword: int) -> tuple[int, int] | None:
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


def short_construct(tokens: list[Token], keyword: int) -> tuple[int, int, int] | None:
    """Token indices of WHERE, ``{`` and ``}`` in ``CONSTRUCT WHERE { triples }`` (without FROM:
    the long form puts FROM after the template, so the copy would not be the same text)."""
    i = keyword + 1
    if i + 1 >= len(tokens) or tokens[i].upper != "WHERE" or tokens[i + 1].text != "{":
        return None
    close = matching_bracket(tokens, i + 1)
    if close >= len(tokens) or tokens[close].text != "}":
        return None
    return i, i + 1, close


def select_clause(facts: LexicalFacts) -> list[Token]:
    """The tokens between ``SELECT`` and the WHERE group (or ``FROM``); empty if no SELECT."""
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


def aggregates_without_alias(facts: LexicalFacts) -> list[Token]:
    """Aggregate calls in the SELECT clause that are not inside ``( ... AS ?v)``."""
    found: list[Token] = []
    clause = select_clause(facts)
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


def lexical_grouping(facts: LexicalFacts) -> dict[str, Any]:
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


def projects_only_a_count(facts: LexicalFacts) -> bool:
    """Whether the SELECT clause projects nothing but one ``(COUNT(...) AS ?v)``."""
    projection = select_clause(facts)
    if projection and projection[0].upper in ("DISTINCT", "REDUCED"):
        projection = projection[1:]
    if len(projection) < 4 or projection[0].text != "(" or projection[1].upper != "COUNT":
        return False
    # The parenthesis opened first must be the one that closes last: a single expression.
    depth = 0
    for k, token in enumerate(projection):
        if token.kind == "punct" and token.text == "(":
            depth += 1
        elif token.kind == "punct" and token.text == ")":
            depth -= 1
            if depth == 0:
                return k == len(projection) - 1
    return False


def clause_targets(tokens: list[Token], keyword: str) -> list[tuple[Token, Token]]:
    """``(keyword, target)`` token pairs: ``SERVICE [SILENT] x``, ``FROM [NAMED] x``."""
    pairs = []
    for i, token in enumerate(tokens):
        if token.kind == "word" and token.upper == keyword:
            target = clause_target(tokens, i)
            if target is not None:
                pairs.append((token, target))
    return pairs


def lexical_fields(facts: LexicalFacts) -> dict[str, Any]:
    """The ParsedQuery fields the tokens alone decide (known even when parsing fails)."""
    clause = select_clause(facts)
    return {
        "select_star": any(t.text == "*" for t in clause[:3]),
        "services": tuple(s.text for s in facts.services),
        "datasets": tuple(d.text for d in facts.datasets),
        "ids": wikidata_ids(facts),
        "has_limit": "LIMIT" in facts.words,
        "prefixes_used": prefixes_used(facts),
    }


def prefixes_used(facts: LexicalFacts) -> tuple[str, ...]:
    """Every prefix the query's prefixed names use, sorted."""
    return tuple(sorted({t.text.split(":", 1)[0] for t in facts.prefixed_names}))


def wikidata_ids(facts: LexicalFacts) -> tuple[str, ...]:
    """The Wikidata ids of the query's prefixed names (``wd:Q42`` gives ``Q42``), once each."""
    ids = []
    for token in facts.prefixed_names:
        match = PREFIXED_ID.match(token.text)
        if match:
            ids.append(match.group(1))
    return tuple(dict.fromkeys(ids))
