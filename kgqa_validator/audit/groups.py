"""Pass 1: duplicate groups over the whole dataset, in one streaming read.

Group reasons depend on every record, so they are computed before any pair is written, and
recomputed (cheaply: no parsing, no model) when a run is resumed: the pairs written after a
resume carry exactly the group reasons of an uninterrupted run.

Memory holds 8-byte digests of the normalised query, question and pair with small integers,
never the texts: about 0.55 KB per distinct pair (measured), so a million pairs take about
0.55 GB during pass 1; only the groups with two or more members are kept for pass 2
(:func:`compact`), before the model is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kgqa_validator.audit.readers import Record
from kgqa_validator.audit.reasons import (
    DUPLICATE_PAIR,
    DUPLICATE_QUERY,
    DUPLICATE_QUESTION,
    is_missing,
    normalise_query,
    normalise_question,
)

# The question part of a pair key when the question is missing: two records with the same
# query and no question are a repeated pair too (LC-QuAD has such "na" twins).
_NO_QUESTION = bytes(8)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


@dataclass(slots=True)
class _Group:
    """First member's position and id, size, and whether members differ in the other part."""

    first_index: int
    first_id: Any
    other: bytes | None  # the first member's other key (question for a query group ...)
    size: int = 1
    differs: bool = False


@dataclass
class Groups:
    """Query, question and pair groups of a dataset, with the membership reasons of a record."""

    queries: dict[bytes, _Group] = field(default_factory=dict)
    questions: dict[bytes, _Group] = field(default_factory=dict)
    pairs: dict[bytes, _Group] = field(default_factory=dict)
    total: int = 0

    @staticmethod
    def keys(record: Record) -> tuple[bytes | None, bytes | None]:
        """Digests of the normalised query and question (``None`` when absent)."""
        query = _digest(normalise_query(record.sparql)) if record.sparql is not None else None
        question = None if is_missing(record.question) or record.question is None \
            else _digest(normalise_question(record.question))
        return query, question

    def add(self, record: Record) -> None:
        self.total += 1
        query, question = self.keys(record)
        if query is not None:
            _join(self.queries, query, record, question)
            _join(self.pairs, query + (question or _NO_QUESTION), record, None)
        if question is not None:
            _join(self.questions, question, record, query)

    def of(self, record: Record) -> dict[str, dict[str, Any]]:
        """``{reason: {"first": id, "size": n}}`` for each group reason of ``record``."""
        query, question = self.keys(record)
        found: dict[str, dict[str, Any]] = {}
        for reason, table, key in ((DUPLICATE_QUERY, self.queries, query),
                                   (DUPLICATE_QUESTION, self.questions, question),
                                   (DUPLICATE_PAIR, self.pairs,
                                    query + (question or _NO_QUESTION) if query else None)):
            group = table.get(key) if key is not None else None
            if group is None or group.size < 2:
                continue
            if reason != DUPLICATE_PAIR and not group.differs:
                continue  # the same query always with the same question: only duplicate_pair
            found[reason] = {"first": group.first_id, "size": group.size}
        return found


def _join(table: dict[bytes, _Group], key: bytes, record: Record, other: bytes | None) -> None:
    group = table.get(key)
    if group is None:
        table[key] = _Group(record.index, record.id, other)
        return
    group.size += 1
    if other != group.other:
        group.differs = True


def compute_groups(records: Iterable[Record], tick: Callable[[int], None] | None = None) -> Groups:
    """Read every record once; ``tick(n)`` reports progress every 1,000 records."""
    groups = Groups()
    for record in records:
        groups.add(record)
        if tick is not None and groups.total % 1000 == 0:
            tick(1000)
    if tick is not None:
        tick(groups.total % 1000)
    return groups


def compact(groups: Groups) -> Groups:
    """Only the groups with two or more members (what pass 2 and Ray actors need)."""
    return Groups({k: g for k, g in groups.queries.items() if g.size > 1},
                  {k: g for k, g in groups.questions.items() if g.size > 1},
                  {k: g for k, g in groups.pairs.items() if g.size > 1}, groups.total)
