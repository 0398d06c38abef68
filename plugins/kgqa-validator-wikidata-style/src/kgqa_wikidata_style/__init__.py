"""Wikidata style lints for kgqa-validator (entry point ``wikidata_style``).

Codes (both ``warning``: a style problem, never a reason to reject a query):

``missing_limit``
    ``SELECT *`` without ``LIMIT``; on Wikidata an unbounded ``SELECT *`` can return millions
    of rows and run into the query service's 60 s deadline.
``label_language``
    ``rdfs:label`` / ``skos:altLabel`` / ``schema:description`` bound to a variable that no
    ``LANG(?v)`` filter restricts, so that every language's label comes back (Wikidata has
    hundreds per item).  A literal with a language tag, or the label service, is fine.

Example:
    >>> from kgqa_validator import Validator, get_plugin_manager
    >>> import kgqa_wikidata_style
    >>> pm = get_plugin_manager(autoload=False, block=["scoring"])
    >>> _ = pm.register(kgqa_wikidata_style, name="wikidata_style")
    >>> (a,) = Validator(plugin_manager=pm).check(["SELECT * WHERE { ?s wdt:P31 wd:Q5 }"])
    >>> [d.code for d in a.diagnostics]
    ['missing_limit']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kgqa_validator import (
    Candidate,
    Diagnostic,
    Form,
    ParsedQuery,
    Question,
    Settings,
    Severity,
    Span,
    hookimpl,
)
from kgqa_validator.parsing.lexer import LineIndex, tokenize

__version__ = "0.1.0"
PRODUCER = "wikidata_style"

_LABEL_PROPERTIES = {
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#altLabel",
    "http://schema.org/description",
}


def _diagnostic(text: str, code: str, message: str, offset: int, length: int) -> Diagnostic:
    line, column = LineIndex(text).position(offset)
    return Diagnostic(code, Severity.WARNING, message, Span(line, column, offset, length),
                      text[offset:offset + length][:80], PRODUCER)


def _expand(name: str, prefixes: dict[str, str]) -> str:
    if name.startswith("<") and name.endswith(">"):
        return name[1:-1]
    prefix, _, local = name.partition(":")
    return prefixes[prefix] + local if prefix in prefixes else name


@hookimpl
def kgqa_check(
    question: Question, candidate: Candidate, parsed: ParsedQuery, settings: Settings
) -> Sequence[Diagnostic] | None:
    if not parsed.valid_syntax or parsed.form is not Form.SELECT:
        return None
    text = candidate.sparql
    tokens = tokenize(text)
    found: list[Diagnostic] = []

    if parsed.select_star and not parsed.has_limit:
        star = next((t for t in tokens if t.text == "*"), tokens[0])
        found.append(_diagnostic(
            text, "missing_limit", "SELECT * without LIMIT can return millions of rows on "
            "Wikidata; add a LIMIT", star.start, len(star.text)))

    prefixes = dict(settings.prefixes)  # and the query's own PREFIX lines
    declared = re.finditer(r"PREFIX\s+([\w\-.]*):\s*<([^>]*)>", text, re.IGNORECASE)
    prefixes.update({m.group(1): m.group(2) for m in declared})
    for i, token in enumerate(tokens[:-1]):
        if token.kind not in ("pname", "iri") or _expand(token.text, prefixes) not in _LABEL_PROPERTIES:
            continue
        target = tokens[i + 1]
        if target.kind != "var":
            continue  # a literal ("x"@en) or something else: nothing to filter
        name = re.escape(target.text[1:])
        if re.search(r"\bLANG\s*\(\s*[?$]" + name + r"\s*\)", text, re.IGNORECASE):
            continue
        found.append(_diagnostic(
            text, "label_language",
            f"{token.text} {target.text} has no language filter: every language's value comes "
            f"back; add FILTER(LANG({target.text}) = \"en\")", token.start, len(token.text)))
    return found or None
