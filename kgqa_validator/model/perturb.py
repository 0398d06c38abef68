"""Wrong variants of a gold query, as generators get queries wrong.

Each perturbation changes the meaning and keeps the spelling style of the query (PREFIX lines,
full IRIs and all), so a variant is as hard to tell from the gold by its form as a real
generator's mistake:

``property``   another property, of the same datatype first (from the shipped property table)
``entity``     another entity
``swap``       subject and object of a triple swapped
``form``       ASK for SELECT and back
``count``      COUNT added or dropped
``order``      ORDER direction flipped
``drop``       a triple pattern dropped

Used for training negatives, for calibrating the rejection threshold on realistic negatives and
for the generator-like evaluation sets.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kgqa_validator.parsing.lexer import Token, tokenize
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
from kgqa_validator.properties import PropertyTable
from kgqa_validator.scoring_text import (
    compact_iri,
    expand_term,
    join_terms,
    prologue,
    standard_namespaces,
    term_id,
)

KINDS = ("property", "entity", "swap", "form", "count", "order", "drop")
_NAMESPACES = standard_namespaces(tuple(sorted(WIKIDATA_PREFIXES.items())))


@dataclass(frozen=True)
class Variant:
    kind: str
    sparql: str


@dataclass
class _Query:
    tokens: list[Token]
    texts: list[str]
    ids: list[tuple[str, str] | None]  # (standard prefix, id) per token
    body: int  # index of the first token after the prologue


def _read(sparql: str) -> _Query:
    tokens = tokenize(sparql)
    start, declared, _ = prologue(tokens)
    ids: list[tuple[str, str] | None] = []
    for token in tokens:
        iri = expand_term(token, declared, WIKIDATA_PREFIXES) if token.kind in ("pname", "iri") else None
        ids.append(term_id(compact_iri(iri, _NAMESPACES)) if iri else None)
    return _Query(tokens, [t.text for t in tokens], ids, start)


def _render(texts: Sequence[str]) -> str:
    return join_terms([t for t in texts if t])


class Perturber:
    """Makes variants; ``pools`` are the properties (by datatype) and entities seen in the
    training queries, so substitutes are ones generators plausibly confuse."""

    def __init__(self, properties: PropertyTable, queries: Iterable[str] = ()) -> None:
        self.properties = properties
        counts: Counter[str] = Counter()
        entities: Counter[str] = Counter()
        for sparql in queries:
            for found in _read(sparql).ids:
                if found:
                    (counts if found[1][0] == "P" else entities)[found[1]] += 1
        self.property_pool: dict[str, list[str]] = defaultdict(list)
        for pid, _ in counts.most_common():
            kind = properties.datatype(pid)
            if kind:
                self.property_pool[kind].append(pid)
        self.entity_pool = sorted(e for e in entities if e.startswith("Q"))

    def variants(self, sparql: str, rng: random.Random,
                 kinds: Sequence[str] = KINDS) -> list[Variant]:
        """One variant per applicable kind (in ``kinds`` order), never the gold itself."""
        query = _read(sparql)
        out: list[Variant] = []
        seen = {_render(query.texts)}
        for kind in kinds:
            texts = _OPERATIONS[kind](self, query, rng)
            if texts is None:
                continue
            rendered = _render(texts)
            if rendered not in seen:
                seen.add(rendered)
                out.append(Variant(kind, rendered))
        return out

    # -- id substitutions --------------------------------------------------------------

    def _replace_id(self, query: _Query, old: str, new: str) -> list[str]:
        texts = list(query.texts)
        for k, found in enumerate(query.ids):
            if found and found[1] == old:
                texts[k] = f"{found[0]}:{new}"
        return texts

    def _property(self, query: _Query, rng: random.Random) -> list[str] | None:
        pids = sorted({f[1] for f in query.ids if f and f[1][0] == "P"})
        if not pids:
            return None
        old = rng.choice(pids)
        kind = self.properties.datatype(old) or "wikibase-item"
        pool = [p for p in self.property_pool.get(kind, [])[:300] if p not in pids]
        if not pool:
            pool = [p for p in self.properties.same_datatype(old)[:300] if p not in pids]
        if not pool:
            return None
        return self._replace_id(query, old, rng.choice(pool))

    def _entity(self, query: _Query, rng: random.Random) -> list[str] | None:
        qids = sorted({f[1] for f in query.ids if f and f[1][0] == "Q"})
        pool = self.entity_pool
        if not qids or len(pool) < 2:
            return None
        old = rng.choice(qids)
        new = old
        while new == old or new in qids:
            new = rng.choice(pool)
        return self._replace_id(query, old, new)

    # -- structural changes ----------------------------------------------------------------

    def _swap(self, query: _Query, rng: random.Random) -> list[str] | None:
        spots = []
        for k in range(max(query.body, 1), len(query.texts) - 1):
            found = query.ids[k]
            if not found or found[0] not in ("wdt", "ps", "pq"):
                continue
            left, right = query.tokens[k - 1], query.tokens[k + 1]
            if _is_node(left, query.ids[k - 1]) and _is_node(right, query.ids[k + 1]) \
                    and left.text != right.text:
                spots.append(k)
        if not spots:
            return None
        k = rng.choice(spots)
        texts = list(query.texts)
        texts[k - 1], texts[k + 1] = texts[k + 1], texts[k - 1]
        return texts

    def _form(self, query: _Query, rng: random.Random) -> list[str] | None:
        head = _head(query)
        if head is None:
            return None
        k, kind, where = head
        texts = list(query.texts)
        if kind == "ASK":
            variables = [t.text for t in query.tokens[k:] if t.kind == "var"]
            if not variables:
                return None
            texts[k] = f"SELECT DISTINCT {variables[0]}"
            return texts
        if kind != "SELECT":
            return None
        texts[k] = "ASK"
        for i in range(k + 1, where):
            texts[i] = ""
        return texts

    def _count(self, query: _Query, rng: random.Random) -> list[str] | None:
        head = _head(query)
        if head is None or head[1] != "SELECT":
            return None
        k, _, where = head
        projection = query.tokens[k + 1:where]
        texts = list(query.texts)
        upper = [t.upper for t in projection]
        if "COUNT" in upper:
            inner = next((t.text for t in projection if t.kind == "var"), None)
            if inner is None:
                return None
            for i in range(k + 1, where):
                texts[i] = ""
            texts[k + 1] = inner
            return texts
        variables = [t.text for t in projection if t.kind == "var"]
        if not variables and "*" in [t.text for t in projection]:
            variables = [t.text for t in query.tokens[where:] if t.kind == "var"][:1]
        if not variables:
            return None
        for i in range(k + 1, where):
            texts[i] = ""
        texts[k + 1] = f"(COUNT(DISTINCT {variables[0]}) AS ?count)"
        return texts

    def _order(self, query: _Query, rng: random.Random) -> list[str] | None:
        for k in range(len(query.tokens) - 2):
            if query.tokens[k].upper == "ORDER" and query.tokens[k + 1].upper == "BY":
                texts = list(query.texts)
                nxt = query.tokens[k + 2]
                if nxt.upper in ("ASC", "DESC"):
                    texts[k + 2] = "ASC" if nxt.upper == "DESC" else "DESC"
                elif nxt.kind == "var":
                    texts[k + 2] = f"DESC({nxt.text})"
                else:
                    return None
                return texts
        return None

    def _drop(self, query: _Query, rng: random.Random) -> list[str] | None:
        head = _head(query)
        if head is None:
            return None
        where = head[2]
        while where < len(query.tokens) and query.texts[where] != "{":
            where += 1
        segments: list[tuple[int, int]] = []
        depth = 0
        start = where + 1
        for i in range(where, len(query.tokens)):
            text = query.texts[i] if query.tokens[i].kind == "punct" else ""
            if text in ("{", "(", "["):
                depth += 1
            elif text in ("}", ")", "]"):
                depth -= 1
                if depth == 0:
                    segments.append((start, i))
                    break
            elif text == "." and depth == 1:
                segments.append((start, i + 1))
                start = i + 1
        triples = [(a, b) for a, b in segments
                   if b - a >= 3 and query.tokens[a].kind in ("var", "pname", "iri")
                   and all(query.tokens[j].text not in ("{", "}") for j in range(a, b))]
        if len(triples) < 2:
            return None
        a, b = rng.choice(triples)
        texts = list(query.texts)
        for i in range(a, b):
            texts[i] = ""
        return texts


def _is_node(token: Token, found: tuple[str, str] | None) -> bool:
    return token.kind == "var" or (found is not None and found[0] == "wd")


def _head(query: _Query) -> tuple[int, str, int] | None:
    """(index of the query keyword, SELECT/ASK, index of WHERE or its ``{``)."""
    for k in range(query.body, len(query.tokens)):
        upper = query.tokens[k].upper if query.tokens[k].kind == "word" else ""
        if upper in ("SELECT", "ASK"):
            for j in range(k + 1, len(query.tokens)):
                if query.tokens[j].upper == "WHERE" or query.texts[j] == "{":
                    return k, upper, j
            return None
        if upper:
            return None
    return None


_OPERATIONS: Mapping[str, Callable[[Perturber, _Query, random.Random], list[str] | None]] = {
    "property": Perturber._property, "entity": Perturber._entity, "swap": Perturber._swap,
    "form": Perturber._form, "count": Perturber._count, "order": Perturber._order,
    "drop": Perturber._drop,
}
