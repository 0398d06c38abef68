"""Readers for question/query datasets, and the shapes that make hard negatives.

Every reader yields :class:`Example` records: one gold query, the usable phrasings of its
question, and (for LC-QuAD-NoA twins) a query that does *not* answer it.  Formats are
detected from the file (see :func:`load_examples`), so ``train`` and ``evaluate`` accept any
of LC-QuAD 2.0 JSON, the labelized JSONL, LC-QuAD-NoA JSON and a generic
``{question, sparql, label}`` JSONL.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kgqa_validator.errors import DataFormatError

# Ids as the Wikidata prefixes use them, in both the id form (wd:Q42) and the labelized
# form (wd:douglas_adams): a "shape" masks them so that same-shaped queries group together.
_ID_TOKEN = re.compile(r"\b(wd|wdt|p|ps|pq|psv|pqv|pr|wdno|wdtn|psn|pqn):([^\s{}\[\]().;,]+)")
_STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_TEMPLATE_BRACES = re.compile(r"\{[^{}]*\}")
_MISSING = {"", "n/a", "na", "none", "null", "[]"}


@dataclass(frozen=True)
class Example:
    """One gold question/query pair from a dataset.

    ``questions`` holds every usable phrasing (original first); ``negative`` is a query known
    not to answer them (an LC-QuAD-NoA twin) or ``None``; ``label`` is 1 for a pair that
    belongs together and 0 for a generic-JSONL negative row.
    """

    questions: tuple[str, ...]
    sparql: str
    negative: str | None = None
    label: int = 1
    source: str = ""
    key: str = ""


DEVELOPMENT_PERCENT = 15
TWINS = ("own", "legacy")
"""How LC-QuAD-NoA twins pair up.  ``own`` (right): a twin's question describes its own
``sparql_wikidata``; ``old_sparql_wikidata`` is the hard negative.  ``legacy``: the pairing
recipe 0.1.0 used (the old query as the twin question's positive), kept only so that the
``v2`` recipe's first stages reproduce the 0.1.0 weights that its last stage starts from."""


def in_development_slice(key: str) -> bool:
    """Whether a record (by its stable ``key``) belongs to the fixed development slice: 15% of
    keys by hash, never trained on, whatever the seed."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < DEVELOPMENT_PERCENT


def usable_question(text: object) -> str | None:
    """Return the question stripped, or ``None`` when it is missing or still a template."""
    if not isinstance(text, str):
        return None
    stripped = text.strip().strip('"').strip()
    if stripped.lower() in _MISSING or len(stripped) < 4:
        return None
    if _TEMPLATE_BRACES.search(stripped):
        return None
    return stripped


def query_shape(sparql: str) -> str:
    """The query with its ids and string literals masked: same shape, other ids."""
    masked = _ID_TOKEN.sub(lambda m: f"{m.group(1)}:_", sparql)
    masked = _STRING_LITERAL.sub("'_'", masked)
    return " ".join(masked.lower().split())


def query_ids(sparql: str) -> list[tuple[str, str]]:
    """``(prefix, local name)`` of every id token in the query, in order."""
    return [(m.group(1), m.group(2)) for m in _ID_TOKEN.finditer(sparql)]


def _lcquad_records(rows: list[dict[str, object]], source: str, twins: str) -> Iterator[Example]:
    for number, row in enumerate(rows):
        key = f"{source}/{row.get('uid', number)}"
        sparql = row.get("sparql_wikidata")
        if not isinstance(sparql, str) or not sparql.strip():
            continue
        phrasings = [
            usable_question(row.get(key))
            for key in ("question", "paraphrased_question")
        ]
        questions = tuple(dict.fromkeys(q for q in phrasings if q))
        if not questions:
            continue
        old = row.get("old_sparql_wikidata")
        if row.get("has_answer") is False and isinstance(old, str) and old.strip():
            if twins == "legacy":
                yield Example(questions, old.strip(), negative=sparql.strip(), source=source, key=key)
            else:
                # NoA twin: its question was rewritten for its own (perturbed) query; the
                # original query is the hard negative.
                yield Example(questions, sparql.strip(), negative=old.strip(), source=source, key=key)
        else:
            yield Example(questions, sparql.strip(), source=source, key=key)


def _jsonl_records(lines: Iterable[str], source: str) -> Iterator[Example]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{source}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("sparql"), str):
            raise DataFormatError(f"{source}:{number}: expected an object with a 'sparql' string")
        question = usable_question(row.get("question"))
        if question is None:
            continue
        label = row.get("label", 1)
        try:
            label_int = int(float(label))
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{source}:{number}: label {label!r} is not 0 or 1") from exc
        key = f"{row.get('source', source)}/{row.get('id', number)}"
        yield Example((question,), row["sparql"].strip(), label=1 if label_int else 0, source=source,
                      key=key)


def load_examples(path: str | Path, twins: str = "own") -> list[Example]:
    """Read a dataset file, detecting its format.

    A JSON array of LC-QuAD 2.0 (or LC-QuAD-NoA) records, or JSON lines with ``question`` and
    ``sparql`` (and an optional 0/1 ``label``, ``source`` and ``id``).  ``twins`` says how
    LC-QuAD-NoA twins pair up (see :data:`TWINS`).  Raises :class:`DataFormatError` with the reason
    for anything else.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read {file}: {exc}") from exc
    head = text.lstrip()[:1]
    if head == "[":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{file}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not all(isinstance(r, dict) for r in rows):
            raise DataFormatError(f"{file}: expected a JSON array of objects")
        if rows and not any("sparql_wikidata" in r for r in rows[:50]):
            raise DataFormatError(f"{file}: JSON array without 'sparql_wikidata' records")
        return list(_lcquad_records(rows, file.name, twins))
    if head == "{":
        return list(_jsonl_records(text.splitlines(), file.name))
    raise DataFormatError(
        f"{file}: not a dataset (expected LC-QuAD JSON array or JSON lines with 'sparql')"
    )
