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
    hookimpl,
)
from kgqa_validator.diagnostics import DiagnosticBuilder
from kgqa_validator.parsing.lexer import analyse, expand_name

__version__ = "0.1.0"
PRODUCER = "wikidata_style"

_LABEL_PROPERTIES = {
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#altLabel",
    "http://schema.org/description",
}


@hookimpl
def kgqa_check(
    question: Question, candidate: Candidate, parsed: ParsedQuery, settings: Settings
) -> Sequence[Diagnostic] | None:
    if not parsed.valid_syntax or parsed.form is not Form.SELECT:
        return None
    text = candidate.sparql
    # The validator's own lexer: tokens never come from comments, strings or IRIs, and the
    # query's PREFIX lines are read as the parser reads them.
    facts = analyse(text)
    tokens = facts.tokens
    out = DiagnosticBuilder(text, PRODUCER)

    if parsed.select_star and not parsed.has_limit:
        star = next((t for t in tokens if t.text == "*"), tokens[0])
        out.add("missing_limit", Severity.WARNING, "SELECT * without LIMIT can return millions "
                "of rows on Wikidata; add a LIMIT", star.start, len(star.text), excerpt=star.text)

    for i, token in enumerate(tokens[:-1]):
        if token.kind not in ("pname", "iri") or expand_name(
                token.text, settings.prefixes, facts.declared_prefixes) not in _LABEL_PROPERTIES:
            continue
        target = tokens[i + 1]
        if target.kind != "var":
            continue  # a literal ("x"@en) or something else: nothing to filter
        name = re.escape(target.text[1:])
        if re.search(r"\bLANG\s*\(\s*[?$]" + name + r"\s*\)", text, re.IGNORECASE):
            continue
        out.add("label_language", Severity.WARNING,
                f"{token.text} {target.text} has no language filter: every language's value "
                f"comes back; add FILTER(LANG({target.text}) = \"en\")", token.start,
                len(token.text), excerpt=token.text)
    return out.items or None
