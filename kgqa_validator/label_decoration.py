"""English-label boilerplate: the tokens of a query that name its answers rather than choose them.

LLM-written queries wrap the answer in label fetching: ``SERVICE wikibase:label { ... }``,
``OPTIONAL { ?x rdfs:label ?xLabel FILTER(LANG(?xLabel) = "en") }``, ``?xLabel`` in the
projection.  Two readers need to know which tokens those are:

- the *decoration* marks every such token (also a non-optional ``?x rdfs:label ?l``, which
  may be the answer itself): the consensus weighs them less (:mod:`kgqa_validator.structure_key`);
- :func:`answer_neutral` picks the tokens that can go without changing which rows a query
  returns: the label service block, an ``OPTIONAL`` group of nothing but decoration, and the
  projected label variables bound only there.  The scoring text drops them
  (:mod:`kgqa_validator.scoring_text`), so that a query with label columns and the same query
  without them read alike to the encoder, which was trained mostly on queries without; the
  structure's ``core_key`` leaves them out.

:func:`label_tokens` gives both from one reading of the query, linear in the number of tokens
(brackets are matched in one pass).
"""

from __future__ import annotations

from collections.abc import Mapping

from kgqa_validator.parsing.lexer import Token, expand_name
from kgqa_validator.prefixes import LABEL_SERVICE

_ALT_LABEL = "http://www.w3.org/2004/02/skos/core#altLabel"  # many per language: rows multiply
LABEL_PREDICATES = frozenset({
    "http://www.w3.org/2000/01/rdf-schema#label",
    _ALT_LABEL,
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://schema.org/description",
    "http://schema.org/name",
})
# The label service binds ?xLabel, ?xAltLabel and ?xDescription for every projected ?x.
_LABEL_SUFFIXES = ("AltLabel", "Label", "Description")
# What a label service block may name and still be boilerplate: its parameters and, in its
# manual mode (``?x rdfs:label ?name``), the label predicates.
_SERVICE_TERMS = LABEL_PREDICATES | {
    "http://www.bigdata.com/rdf#serviceParam",
    "http://wikiba.se/ontology#language",
}


def _names(tokens: list[Token], prefixes: Mapping[str, str],
           declared: Mapping[str, str]) -> list[str]:
    return [expand_name(t.text, prefixes, declared) if t.kind in ("pname", "iri") else ""
            for t in tokens]


def _label_variables(tokens: list[Token], names: list[str], has_service: bool) -> set[str]:
    """Variables (original names) that only carry an English label or description."""
    found: set[str] = set()
    for i, name in enumerate(names):
        if name in LABEL_PREDICATES and i + 1 < len(tokens) and tokens[i + 1].kind == "var":
            found.add(tokens[i + 1].text[1:])
    if has_service:
        variables = {t.text[1:] for t in tokens if t.kind == "var"}
        for var in variables:
            for suffix in _LABEL_SUFFIXES:
                if var.endswith(suffix) and var[: -len(suffix)] in variables:
                    found.add(var)
                    break
    return found


def closing_brackets(tokens: list[Token]) -> dict[int, int]:
    """Index of the closing bracket of every opening one (unclosed: ``len(tokens)``), in one pass."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for i, token in enumerate(tokens):
        if token.kind != "punct":
            continue
        if token.text in "{([":
            stack.append(i)
        elif token.text in "})]" and stack:
            closing[stack.pop()] = i
    for i in stack:
        closing[i] = len(tokens)
    return closing


def _service_block(tokens: list[Token], names: list[str], i: int) -> int | None:
    """Index of the ``{`` of a label service block starting at ``tokens[i]`` (``SERVICE
    [SILENT] wikibase:label {``), else ``None``."""
    if tokens[i].kind != "word" or tokens[i].upper != "SERVICE":
        return None
    k = i + 1
    if k < len(tokens) and tokens[k].kind == "word" and tokens[k].upper == "SILENT":
        k += 1
    if k + 1 < len(tokens) and names[k] == LABEL_SERVICE and tokens[k + 1].text == "{":
        return k + 1
    return None


def covered(n: int, spans: list[tuple[int, int]]) -> list[bool]:
    """Per index below ``n``: whether some inclusive span ``(first, last)`` covers it.  One pass
    over a difference array, so nested spans (hostile input nests thousands) cost O(n)."""
    depth = [0] * (n + 1)
    for first, last in spans:
        depth[first] += 1
        depth[min(last, n - 1) + 1] -= 1
    out = []
    running = 0
    for k in range(n):
        running += depth[k]
        out.append(running > 0)
    return out


def _filter_group(tokens: list[Token], i: int) -> int | None:
    """Index of the ``(`` a ``FILTER`` at ``i`` constrains: ``FILTER (...)`` or a bare call
    ``FILTER langMatches(...)``; else ``None``."""
    if tokens[i].kind != "word" or tokens[i].upper != "FILTER" or i + 1 >= len(tokens):
        return None
    if tokens[i + 1].text == "(":
        return i + 1
    if tokens[i + 1].kind in ("word", "pname", "iri") and i + 2 < len(tokens) \
            and tokens[i + 2].text == "(":
        return i + 2
    return None


def _service_spans(tokens: list[Token], names: list[str],
                   closing: dict[int, int]) -> list[tuple[int, int]]:
    """``(first, last)`` of every label service block that is boilerplate: one that names
    nothing but its parameters and label predicates.  ``SERVICE wikibase:label {
    bd:serviceParam wikibase:language "en" . wd:Q42 schema:description ?d }`` asks for one
    entity's description: the entity and the description are the answer, not decoration."""
    # other[k]: IRIs among tokens[:k] that a boilerplate block does not name (O(1) per block).
    other = [0]
    for name in names:
        other.append(other[-1] + (name != "" and name not in _SERVICE_TERMS))
    spans = []
    for i in range(len(tokens)):
        block = _service_block(tokens, names, i)
        if block is not None:
            last = min(closing[block], len(tokens) - 1)
            if other[last + 1] - other[block] == 0:
                spans.append((i, closing[block]))
    return spans


def _mark(tokens: list[Token], names: list[str], labels: set[str], closing: dict[int, int],
          services: list[tuple[int, int]]) -> list[bool]:
    n = len(tokens)
    marks = [t.kind == "var" and t.text[1:] in labels for t in tokens]
    # label_vars[k]: label variables among tokens[:k] (a FILTER's content is checked in O(1)).
    label_vars = [0]
    for flag in marks:
        label_vars.append(label_vars[-1] + flag)
    spans = services[:]
    for i in range(n):
        group = _filter_group(tokens, i)
        if names[i] in LABEL_PREDICATES:
            # ?s rdfs:label ?o .  (or  ; rdfs:label ?o  inside a predicate-object list)
            spans.append((i, i + 1))
            if i and tokens[i - 1].text == ";":
                spans.append((i - 1, i - 1))
            elif i and tokens[i - 1].kind in ("var", "pname", "iri"):
                spans.append((i - 1, i - 1))
                if i + 2 < n and tokens[i + 2].text == ".":
                    spans.append((i + 2, i + 2))
        elif group is not None:
            end = closing[group]
            if label_vars[min(end, n)] - label_vars[group + 1] > 0:
                spans.append((i, end))
    marks = [a or b for a, b in zip(marks, covered(n, spans), strict=True)]
    # An OPTIONAL { ... } that holds nothing but decoration is decoration as a whole.
    meaning = [0]  # meaning[k]: tokens among tokens[:k] that are neither decoration nor "."
    for k, token in enumerate(tokens):
        meaning.append(meaning[-1] + (not marks[k] and token.text != "."))
    optionals = [(i, closing[i + 1]) for i in range(n) if _optional_group(tokens, i)
                 and meaning[min(closing[i + 1], n)] - meaning[i + 2] == 0]
    return [a or b for a, b in zip(marks, covered(n, optionals), strict=True)]


def _optional_group(tokens: list[Token], i: int) -> bool:
    return tokens[i].kind == "word" and tokens[i].upper == "OPTIONAL" and i + 1 < len(tokens) \
        and tokens[i + 1].text == "{"


def answer_neutral(tokens: list[Token], prefixes: Mapping[str, str],
                   declared: Mapping[str, str]) -> set[int]:
    """Indexes of the tokens of a query body that can go without changing the rows that come
    back: label service blocks; an ``OPTIONAL`` group of decoration only that fetches one label
    per language (``rdfs:label``, ``skos:prefLabel``, ``schema:name``/``description`` with a
    ``FILTER``, never ``skos:altLabel``, which multiplies rows), whose subject is bound before
    it and whose label is used nowhere else; and the projected label variables bound only
    there (while another variable stays projected)."""
    return label_tokens(tokens, prefixes, declared)[1]


def label_tokens(tokens: list[Token], prefixes: Mapping[str, str],
                 declared: Mapping[str, str]) -> tuple[list[bool], set[int]]:
    """Per token of a query body (the prologue already cut off), whether it is decoration;
    and the indexes of its answer-neutral tokens (:func:`answer_neutral`)."""
    names = _names(tokens, prefixes, declared)
    labels = _label_variables(tokens, names, any(name == LABEL_SERVICE for name in names))
    closing = closing_brackets(tokens)
    services = _service_spans(tokens, names, closing)
    marks = _mark(tokens, names, labels, closing, services)
    return marks, _neutral(tokens, names, labels, closing, services, marks)


def _neutral(tokens: list[Token], names: list[str], labels: set[str], closing: dict[int, int],
             services: list[tuple[int, int]], marks: list[bool]) -> set[int]:
    n = len(tokens)
    optionals = [(i, min(closing[i + 1], n - 1)) for i in range(n)
                 if _optional_group(tokens, i) and marks[i]]
    projection = set(_projection(tokens))
    projected_labels = {tokens[k].text[1:] for k in projection if tokens[k].text[1:] in labels}
    keeps_a_column = len(projected_labels) < len({tokens[k].text[1:] for k in projection})
    in_span = covered(n, services + optionals)
    # first_seen[v]: where a variable first appears outside every span and the projection.
    first_seen: dict[str, int] = {}
    for k in range(n):
        if tokens[k].kind == "var" and not in_span[k] and k not in projection:
            first_seen.setdefault(tokens[k].text[1:], k)
    outside = set(first_seen)
    if not keeps_a_column:  # the labels are the only columns: they are the answer
        outside |= projected_labels
    # Prefix counts, so that each OPTIONAL is checked in O(1) (they may nest thousands deep).
    blocking = [0]  # a label used elsewhere, a multi-valued predicate, an unbound subject
    filters = [0]
    for k, token in enumerate(tokens):
        name = token.text[1:] if token.kind == "var" else ""
        blocks = (name in labels and name in outside) or names[k] == _ALT_LABEL
        filters.append(filters[-1] + (token.kind == "word" and token.upper == "FILTER"))
        blocking.append(blocking[-1] + blocks)
    dropped = services[:]
    for first, last in optionals:
        if blocking[last + 1] - blocking[first] or filters[last + 1] - filters[first] == 0:
            continue
        subjects = {tokens[k].text[1:] for k in range(first, min(first + 4, last))
                    if tokens[k].kind == "var" and tokens[k].text[1:] not in labels}
        if all(first_seen.get(v, n) < first for v in subjects):
            dropped.append((first, last))
    gone = covered(n, dropped)
    result = {k for k in range(n) if gone[k]}
    if projected_labels and keeps_a_column:
        used = {tokens[k].text[1:] for k in range(n)
                if tokens[k].kind == "var" and not gone[k] and k not in projection}
        result |= {k for k in projection
                   if tokens[k].text[1:] in labels and tokens[k].text[1:] not in used}
    return result


def _projection(tokens: list[Token]) -> list[int]:
    """Indexes of the plain variables projected by the first SELECT (not those inside an
    expression ``(... AS ?x)``); empty for ``SELECT *`` and other query forms."""
    found: list[int] = []
    depth = 0
    in_select = False
    for i, token in enumerate(tokens):
        if not in_select:
            if token.kind == "word" and token.upper == "SELECT":
                in_select = True
            continue
        if (token.kind == "word" and token.upper == "WHERE") or token.text == "{":
            break
        if token.kind == "punct" and token.text == "(":
            depth += 1
        elif token.kind == "punct" and token.text == ")":
            depth -= 1
        elif token.kind == "var" and depth == 0:
            found.append(i)
    return found
