"""The canonical scoring text: what a scorer reads for a candidate query.

What the encoder sees depends on what the query means, not on how it is spelled.  From the
project's own tokens (:mod:`kgqa_validator.parsing.lexer`):

- ``PREFIX``/``BASE`` declarations are resolved and dropped; every IRI, written in full or with
  any declared prefix, is compacted to the standard Wikidata query-service name (``wd:``,
  ``wdt:``, ``p:``, ``ps:``, ``pq:``, ``psv:``, ``pqv:``, ``wikibase:``, ``rdfs:``, ``schema:`` ...);
  a relative IRI is resolved against ``BASE`` first;
- keywords and function names are lower-cased, ``$x`` is written ``?x``, ``{``/``}`` become
  ``[``/``]`` (the labelized form the model was trained on), comments and whitespace go, tokens
  are joined by single spaces;
- the English-label boilerplate that does not change which rows come back goes: the label
  service block, an ``OPTIONAL`` group that only fetches labels, the projected label variables
  bound only there (:func:`kgqa_validator.label_decoration.answer_neutral`);
- ids are replaced by their labels where known (``wdt:P19`` -> ``wdt:place_of_birth``,
  ``wd:Q42`` -> ``wd:douglas_adams``); an id without a label stays an id.

So a query with or without PREFIX lines, with full IRIs, in other whitespace or keyword case
gets the identical text, hence the identical score.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from kgqa_validator.label_decoration import answer_neutral
from kgqa_validator.parsing.lexer import SPARQL_WORDS, Token, tokenize
from kgqa_validator.prefixes import WIKIDATA_PREFIXES

ID_PREFIXES = frozenset({"wd", "wdt", "p", "ps", "pq", "psv", "pqv", "pr", "prv", "wdno", "wdtn",
                         "psn", "pqn", "prn"})
"""Standard prefixes whose local names are Wikidata ids (``Q42``, ``P19``, ``L1``)."""
_ID = re.compile(r"^[QPL][1-9]\d*$")
_LOCAL = re.compile(r"^[A-Za-z0-9_][\w\-]*$")
_UNSAFE = re.compile(r"[^\w\-]+")
_GLUE_AFTER = frozenset({"@", "^"})  # language tags and datatypes: "x"@en, "1"^^xsd:int


def label_token(label: str) -> str:
    """A label as a prefixed-name local part: lower case, words joined by ``_``."""
    return _UNSAFE.sub("_", label.strip().lower()).strip("_") or "_"


@lru_cache(maxsize=8)
def standard_namespaces(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """(namespace, standard prefix), longest namespace first, the standard names winning."""
    chosen: dict[str, str] = {}
    for prefix, namespace in items:
        chosen.setdefault(namespace, prefix)
    for prefix, namespace in WIKIDATA_PREFIXES.items():
        chosen[namespace] = prefix
    return tuple(sorted(((ns, p) for ns, p in chosen.items() if ns), key=lambda x: -len(x[0])))


def compact_iri(iri: str, namespaces: tuple[tuple[str, str], ...]) -> str:
    """``http://www.wikidata.org/entity/Q42`` -> ``wd:Q42``; ``<iri>`` when no name fits."""
    for namespace, prefix in namespaces:
        if iri.startswith(namespace):
            local = iri[len(namespace):]
            if _LOCAL.match(local):
                return f"{prefix}:{local}"
    return f"<{iri}>"


def prologue(tokens: list[Token]) -> tuple[int, dict[str, str], str]:
    """(index after the prologue, declared prefixes, BASE)."""
    declared: dict[str, str] = {}
    base = ""
    i = 0
    while i < len(tokens):
        upper = tokens[i].upper if tokens[i].kind == "word" else ""
        if upper == "PREFIX" and i + 2 < len(tokens) and tokens[i + 1].kind == "pname" \
                and tokens[i + 2].kind == "iri":
            declared[tokens[i + 1].text.rstrip(":")] = resolve_iri(tokens[i + 2].text[1:-1], base)
            i += 3
        elif upper == "BASE" and i + 1 < len(tokens) and tokens[i + 1].kind == "iri":
            base = resolve_iri(tokens[i + 1].text[1:-1], base)
            i += 2
        else:
            break
    return i, declared, base


def resolve_iri(iri: str, base: str) -> str:
    """``iri`` resolved against ``base`` (unchanged when absolute or without a base)."""
    if not base or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", iri):
        return iri
    from urllib.parse import urljoin

    return urljoin(base, iri)


def expand_term(token: Token, declared: Mapping[str, str],
                prefixes: Mapping[str, str]) -> str | None:
    """The full IRI of an IRI or prefixed-name token (``None``: another token, or an
    undeclared prefix)."""
    if token.kind == "iri":
        return token.text[1:-1]
    if token.kind == "pname":
        prefix, _, local = token.text.partition(":")
        namespace = declared.get(prefix, prefixes.get(prefix))
        return namespace + local if namespace is not None else None
    return None


def canonical_terms(sparql: str, prefixes: Mapping[str, str] | None = None) -> list[str]:
    """The canonical tokens of ``sparql`` (ids not yet verbalised)."""
    prefixes = dict(WIKIDATA_PREFIXES) if prefixes is None else prefixes
    tokens = tokenize(sparql)
    start, declared, base = prologue(tokens)
    namespaces = standard_namespaces(tuple(sorted({**prefixes, **declared}.items())))
    dropped = {start + k for k in answer_neutral(tokens[start:], prefixes, declared)}
    terms: list[str] = []
    for i in range(start, len(tokens)):
        if i in dropped:
            continue
        token = tokens[i]
        kind, text = token.kind, token.text
        if kind == "iri":
            terms.append(compact_iri(resolve_iri(text[1:-1], base), namespaces))
        elif kind == "pname":
            iri = expand_term(token, declared, prefixes)
            terms.append(compact_iri(iri, namespaces) if iri is not None else text)
        elif kind == "word":
            terms.append(text.lower() if text.upper() in SPARQL_WORDS else text)
        elif kind == "var":
            terms.append("?" + text[1:])
        elif kind == "punct" and text in "{}":
            terms.append("[" if text == "{" else "]")
        elif text == "." and terms and terms[-1] in (".", "["):
            continue  # left by a dropped label group (". ." and "{ ." are not SPARQL otherwise)
        else:
            terms.append(text)
    return terms


def term_id(term: str) -> tuple[str, str] | None:
    """``("wdt", "P19")`` for a canonical id term, else ``None``."""
    prefix, sep, local = term.partition(":")
    if sep and prefix in ID_PREFIXES and _ID.match(local):
        return prefix, local
    return None


def ids_in(sparql: str, prefixes: Mapping[str, str] | None = None) -> list[str]:
    """Wikidata ids (Q/P/L numbers) the query mentions, in full IRIs or prefixed, in order."""
    found = (term_id(t) for t in canonical_terms(sparql, prefixes))
    return list(dict.fromkeys(f[1] for f in found if f))


def _normalise(terms: list[str]) -> list[str]:
    """Optional spellings made one: ``WHERE`` is always written, a group's last ``.`` is not,
    two-character operators are one term."""
    out: list[str] = []
    in_head = False
    for term in terms:
        if term in ("select", "ask", "describe"):
            in_head = True
        elif term == "where":
            in_head = False
        elif term == "[":
            if in_head:
                out.append("where")
            in_head = False
        if term == "]" and out and out[-1] == ".":
            out.pop()
        if out and out[-1] in ("&", "|", "!", "<", ">") and term in ("&", "|", "=") and \
                out[-1] + term in ("&&", "||", "!=", "<=", ">="):
            out[-1] += term
            continue
        out.append(term)
    return out


def join_terms(terms: list[str]) -> str:
    out: list[str] = []
    glue = False
    for term in _normalise(terms):
        if out and (glue or term in _GLUE_AFTER):
            out[-1] += term
        else:
            out.append(term)
        glue = term in _GLUE_AFTER
    return " ".join(out)


def scoring_text(sparql: str, labels: Mapping[str, str] | None = None,
                 prefixes: Mapping[str, str] | None = None) -> str:
    """The canonical text of ``sparql`` with ids replaced by ``labels`` (id -> English label)."""
    labels = labels or {}
    terms = canonical_terms(sparql, prefixes)
    for k, term in enumerate(terms):
        found = term_id(term)
        if found:
            label = labels.get(found[1])
            if label:
                terms[k] = f"{found[0]}:{label_token(label)}"
    return join_terms(terms)


def verbalise(sparql: str, labels: Mapping[str, str]) -> str:
    """The scoring text with ``labels`` (kept under its historical name)."""
    return scoring_text(sparql, labels)
