"""What a query says, independent of how it is spelled: the structural form of a candidate.

Two candidates that differ only in spelling get the same :attr:`Structure.key`:

- PREFIX and BASE lines are resolved and dropped; full IRIs and prefixed names in any
  declared prefix are written with the standard Wikidata query service names (``wd:Q42``,
  ``wdt:P19``, ``p:``/``ps:``/``pq:`` ...), and ``rdf:type`` is written ``a``;
- variables are renamed ``?v0``, ``?v1`` ... in order of first appearance (``$x`` is ``?x``);
  those seen only in decoration (below) come last, as ``?lN``;
- the optional dot before a closing brace is dropped, and the optional WHERE is written;
- a relative IRI is resolved against BASE;
- keywords and function names are upper-cased; whitespace and comments do not count;
- string literals are written with double quotes.

Each token also says whether it is *decoration*: the English-label boilerplate LLMs add
around an answer (``SERVICE wikibase:label { ... }``, ``?x rdfs:label ?xLabel`` and the
``FILTER(LANG(?xLabel) = "en")`` that goes with it, the ``?xLabel`` variables themselves).
It changes how the answer is shown, not which answer it is, so similarity measures weigh it
less (see :mod:`kgqa_validator.builtin.consensus`).

The lexer never fails, so neither does :func:`structure`: text that is not SPARQL still has a
(meaningless but deterministic) structure.  Work is linear in the text; at most
``max_tokens`` tokens are kept.

Example:
    >>> a = structure("PREFIX wd: <http://www.wikidata.org/entity/>\\n"
    ...               "select ?who where { wd:Q42 <http://www.wikidata.org/prop/direct/P19> ?who }")
    >>> b = structure("SELECT ?x WHERE {wd:Q42 wdt:P19 ?x}")
    >>> a.key == b.key
    True
    >>> a.key
    'SELECT ?v0 WHERE { wd:Q42 wdt:P19 ?v0 }'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kgqa_validator.label_decoration import label_tokens
from kgqa_validator.parsing.lexer import Token, analyse, expand_name
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
from kgqa_validator.scoring_text import prologue, resolve_iri

MAX_TOKENS = 2_000
"""Tokens kept per query: far more than any real candidate has (LLM candidates: ~30-150)."""

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
# Longest namespace first, so that p: never shadows ps:/pq: (they all start with .../prop/).
_NAMESPACES = sorted(((iri, name) for name, iri in WIKIDATA_PREFIXES.items()),
                     key=lambda item: -len(item[0]))


@dataclass(frozen=True)
class Structure:
    """The normalised tokens of one query and, per token, whether it is label decoration and
    whether it is answer-neutral (can go without changing the rows that come back: see
    :func:`kgqa_validator.label_decoration.answer_neutral`)."""

    tokens: tuple[str, ...]
    decoration: tuple[bool, ...]
    neutral: tuple[bool, ...]

    @property
    def key(self) -> str:
        """Equal for candidates that differ only in spelling (see the module docstring)."""
        return " ".join(self.tokens)

    @property
    def core_key(self) -> str:
        """:attr:`key` without the answer-neutral label boilerplate: equal for a query with a
        label service or label columns and the same query without (what
        :func:`kgqa_validator.label_decoration.answer_neutral` counts as changing no rows)."""
        core: list[str] = []
        for token, neutral in zip(self.tokens, self.neutral, strict=True):
            if neutral:
                continue
            # The dots around a dropped group: one between two patterns, none after "{".
            if token == "." and (not core or core[-1] in (".", "{")):
                continue
            if token == "}" and core and core[-1] == ".":
                core.pop()
            core.append(token)
        return " ".join(core)


def compact_iri(iri: str) -> str:
    """``wd:Q42`` for ``http://www.wikidata.org/entity/Q42``; other IRIs as ``<iri>``."""
    if iri == RDF_TYPE:
        return "a"
    for namespace, name in _NAMESPACES:
        if iri.startswith(namespace):
            local = iri[len(namespace):]
            if local and all(c.isalnum() or c in "_-." for c in local) and not local.endswith("."):
                return f"{name}:{local}"
    return f"<{iri}>"


def _normalise(token: Token, prefixes: Mapping[str, str], declared: Mapping[str, str],
               base: str) -> str:
    kind, text = token.kind, token.text
    if kind == "word":
        return "a" if text == "a" else text.upper()
    if kind in ("pname", "iri"):
        # A relative IRI means what BASE makes of it, as in the scoring text.
        iri = resolve_iri(text[1:-1], base) if kind == "iri" else expand_name(text, prefixes, declared)
        if kind == "pname" and iri == text:  # an undeclared prefix: keep it as written
            return text
        return compact_iri(iri)
    if kind == "string":
        quote = 3 if text[:3] in ('"""', "'''") else 1
        return '"' + text[quote:-quote] + '"'
    return text


def structure(sparql: str, prefixes: Mapping[str, str] | None = None,
              max_tokens: int = MAX_TOKENS) -> Structure:
    """The structural form of ``sparql`` (see the module docstring).

    Args:
        sparql: the query as given.
        prefixes: prefixes assumed declared (default: the Wikidata query service's); the
            query's own PREFIX lines win over them.
        max_tokens: tokens kept after the prologue (bounds the work on hostile input).
    """
    prefixes = WIKIDATA_PREFIXES if prefixes is None else prefixes
    facts = analyse(sparql)
    start, _, base = prologue(facts.tokens)
    tokens = facts.tokens[start:][:max_tokens]
    marks, neutral = label_tokens(tokens, prefixes, facts.declared_prefixes)
    # Variables are numbered by first appearance outside decoration, so that adding a label
    # service does not renumber the variables that carry the meaning.
    renamed: dict[str, str] = {}
    for token, decoration in zip(tokens, marks, strict=True):
        if token.kind == "var" and not decoration:
            renamed.setdefault(token.text[1:], f"?v{len(renamed)}")
    for token in tokens:
        if token.kind == "var" and token.text[1:] not in renamed:
            renamed[token.text[1:]] = f"?l{len(renamed)}"
    out: list[str] = []
    decorated: list[bool] = []
    neutral_flags: list[bool] = []
    in_head = False  # between SELECT/ASK/DESCRIBE and the group: WHERE is optional there
    for i, token in enumerate(tokens):
        if token.text == "." and i + 1 < len(tokens) and tokens[i + 1].text == "}":
            continue  # a pattern's last dot is optional
        upper = token.upper if token.kind == "word" else ""
        if upper in ("SELECT", "ASK", "DESCRIBE"):
            in_head = True
        elif upper == "WHERE":
            in_head = False
        elif token.text == "{" and in_head:
            in_head = False
            out.append("WHERE")
            decorated.append(False)
            neutral_flags.append(False)
        out.append(renamed[token.text[1:]] if token.kind == "var"
                   else _normalise(token, prefixes, facts.declared_prefixes, base))
        decorated.append(marks[i])
        neutral_flags.append(i in neutral)
    return Structure(tuple(out), tuple(decorated), tuple(neutral_flags))
