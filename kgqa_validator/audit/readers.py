"""Dataset readers: every format becomes a stream of :class:`Record` values, in file order.

Formats (``detect_format`` picks one from the name and the first character; ``--format``
overrides it):

* ``lcquad``: a JSON array of LC-QuAD 2.0 records (``uid``, ``question``,
  ``paraphrased_question``, ``sparql_wikidata``).  The array is *streamed* element by element
  (:func:`iter_json_array`), so a large array is never held in memory.
* ``qald``: a QALD JSON document (``{"questions": [{"id", "question": [{"language",
  "string"}], "query": {"sparql"}, "answers": [...]}]}``).  It is one nested object, loaded
  whole: QALD files are a few MB; convert a bigger one to JSON Lines.
* ``jsonl``: one JSON object per line, read line by line (a line over 32 MiB is a bad record).
* ``csv`` (``.tsv``: tab-separated): a header row, then one record per row.

A record that cannot be read (not an object, a field of the wrong type, a broken line) is a
:class:`Record` with ``error`` set; it becomes the ``unreadable_record`` reason, never the end
of the run.  Only a file that is not in the format at all raises
:class:`~kgqa_validator.errors.DataFormatError` (after the records read before the damage).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kgqa_validator.batch_io import bounded_lines
from kgqa_validator.errors import DataFormatError

FORMATS = ("lcquad", "qald", "jsonl", "csv")
MAX_LINE_CHARS = 32 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FieldMap:
    """Which input fields hold what; ``None`` means the format's default."""

    question: str | None = None
    sparql: str | None = None
    id: str | None = None
    paraphrase: str | None = None
    lang: str = "en"


@dataclass(frozen=True)
class Record:
    """One question/query pair as read; ``index`` is its 0-based position in the dataset."""

    index: int
    id: Any
    question: str | None
    sparql: str | None
    paraphrase: str | None = None
    gold: tuple[str, ...] | None = None  # gold answer values (QALD), None when not given
    gold_boolean: bool | None = None
    error: str = ""


def detect_format(path: Path) -> str:
    """The format of ``path`` from its suffix, and for ``.json`` from its first character."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    try:
        with _open(path) as stream:
            head = stream.read(4096).lstrip()
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror}") from exc
    if head.startswith("["):
        return "lcquad"
    if head.startswith("{"):
        # A QALD document starts with {"questions" or {"dataset"; a JSON Lines file with
        # one object per line starts the same way but has a line end right after it.
        first_line = head.split("\n", 1)[0]
        if '"questions"' in head or '"dataset"' in head[:200]:
            return "qald"
        try:
            json.loads(first_line)
            return "jsonl"
        except ValueError:
            return "qald"
    raise DataFormatError(f"{path}: cannot tell the format (give --format {'|'.join(FORMATS)})")


def read_records(path: Path, fmt: str | None = None, fields: FieldMap | None = None,
                 ) -> Iterator[Record]:
    """Every record of ``path`` in order (see the module docstring for the formats)."""
    fields = fields or FieldMap()
    fmt = fmt or detect_format(path)
    if fmt == "lcquad":
        with _open(path) as stream:
            for index, item in enumerate(iter_json_array(stream, str(path))):
                yield _from_mapping(index, item, fields, default_id=None, lcquad=True)
    elif fmt == "qald":
        yield from _qald(path, fields)
    elif fmt == "jsonl":
        with _open(path) as stream:
            yield from _jsonl(stream, fields)
    elif fmt == "csv":
        yield from _csv(path, fields)
    else:
        raise DataFormatError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _open(path: Path) -> IO[str]:
    # utf-8-sig: a byte order mark is not data; surrogateescape: an undecodable byte becomes
    # a character the parser reports (invalid_character) instead of stopping the run.
    try:
        return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror}") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def iter_json_array(stream: IO[str], name: str = "input") -> Iterator[Any]:
    """The elements of a top-level JSON array, decoded one at a time from ``stream``.

    Memory holds one element and one read chunk, not the array.
    """
    buffer = stream.read(_CHUNK)
    pos = _skip_ws(buffer, 0)
    if not buffer[pos:pos + 1] == "[":
        raise DataFormatError(f"{name}: expected a JSON array")
    pos += 1
    expect_value = True
    count = 0
    eof = False
    while True:
        pos = _skip_ws(buffer, pos)
        if pos >= len(buffer) - 1 and not eof:
            # Keep the unread tail and read on (a value may straddle the chunk end).
            more = stream.read(_CHUNK)
            eof = not more
            buffer = buffer[pos:] + more
            pos = 0
            continue
        if pos >= len(buffer):
            raise DataFormatError(f"{name}: the JSON array ends without ']' after {count} elements")
        char = buffer[pos]
        if char == "]" and (not expect_value or count == 0):
            return
        if char == "," and not expect_value:
            expect_value = True
            pos += 1
            continue
        if not expect_value:
            raise DataFormatError(f"{name}: broken JSON after element {count} (expected ',' or ']')")
        try:
            value, end = _DECODER.raw_decode(buffer, pos)
        except (ValueError, RecursionError) as exc:
            if not eof:
                more = stream.read(max(_CHUNK, len(buffer)))  # double: a huge element
                eof = not more
                buffer = buffer[pos:] + more
                pos = 0
                continue
            raise DataFormatError(f"{name}: element {count + 1} is not JSON "
                                  f"({getattr(exc, 'msg', exc)})") from exc
        if end >= len(buffer) and not eof:
            # A number at the chunk end may continue in the next chunk: read on and redo.
            more = stream.read(_CHUNK)
            eof = not more
            buffer = buffer[pos:] + more
            pos = 0
            if more:
                continue
            value, end = _DECODER.raw_decode(buffer, pos)
        yield value
        count += 1
        pos = end
        expect_value = False


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _text(value: Any) -> str | None:
    """A field as text: strings as they are, numbers as written, anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _pick(item: Mapping[str, Any], name: str | None, defaults: tuple[str, ...]) -> tuple[bool, Any]:
    """``(found, value)`` of the named field, or of the first default field present."""
    for key in (name,) if name else defaults:
        if key in item:
            return True, item[key]
    return False, None


def _from_mapping(index: int, item: Any, fields: FieldMap, default_id: Any,
                  lcquad: bool = False) -> Record:
    fallback_id = default_id if default_id is not None else index + 1
    if not isinstance(item, dict):
        return Record(index, fallback_id, None, None,
                      error=f"record {index + 1} is a JSON {type(item).__name__}, not an object")
    found_id, id_value = _pick(item, fields.id, ("uid", "id") if lcquad else ("id", "uid"))
    if fields.id is None and default_id is not None:
        found_id, id_value = True, default_id  # JSONL/CSV: the line number unless --id-field
    record_id = id_value if found_id and isinstance(id_value, str | int) \
        and not isinstance(id_value, bool) else fallback_id
    has_sparql, sparql = _pick(item, fields.sparql, ("sparql_wikidata", "sparql", "query")
                               if lcquad else ("sparql", "sparql_wikidata", "query"))
    has_question, question = _pick(item, fields.question, ("question",))
    _, paraphrase = _pick(item, fields.paraphrase, ("paraphrased_question", "paraphrase"))
    if isinstance(sparql, dict):  # {"query": {"sparql": ...}} in QALD-like JSON Lines
        sparql = sparql.get("sparql")
    errors = []
    if not has_sparql or not isinstance(sparql, str):
        wanted = fields.sparql or "sparql"
        errors.append(f"no '{wanted}' string" if not has_sparql else f"'{wanted}' is not a string")
    if has_question and question is not None and not isinstance(question, str | int | float):
        errors.append(f"'{fields.question or 'question'}' is not a string")
    return Record(index, record_id, _text(question), sparql if isinstance(sparql, str) else None,
                  _text(paraphrase), error="; ".join(errors))


def _jsonl(stream: IO[str], fields: FieldMap) -> Iterator[Record]:
    index = 0
    for number, line in enumerate(bounded_lines(stream, MAX_LINE_CHARS), 1):
        if line is not None and not line.strip():
            continue
        if line is None:
            yield Record(index, number, None, None,
                         error=f"line {number} is longer than {MAX_LINE_CHARS >> 20} MiB")
        else:
            try:
                item = _DECODER.decode(line.strip())
            except (ValueError, RecursionError) as exc:
                yield Record(index, number, None, None,
                             error=f"line {number} is not JSON ({getattr(exc, 'msg', exc)})")
                index += 1
                continue
            yield _from_mapping(index, item, fields, default_id=number)
        index += 1


def _csv(path: Path, fields: FieldMap) -> Iterator[Record]:
    csv.field_size_limit(MAX_LINE_CHARS)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with _open(path) as stream:
        reader = csv.DictReader(stream, delimiter=delimiter)
        start = 2  # the header is line 1
        index = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Record(index, start, None, None, error=f"line {start}: {exc}")
                index += 1
                start = reader.line_num + 1
                continue
            # Empty cells are absent values, like a JSON null.
            item = {k: v for k, v in row.items() if isinstance(k, str)}
            yield _from_mapping(index, item, fields, default_id=start)
            index += 1
            start = reader.line_num + 1


def _qald(path: Path, fields: FieldMap) -> Iterator[Record]:
    try:
        with _open(path) as stream:
            document = json.load(stream, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise DataFormatError(f"{path}: not a QALD JSON document ({getattr(exc, 'msg', exc)})") from exc
    questions = document.get("questions") if isinstance(document, dict) else None
    if not isinstance(questions, list):
        raise DataFormatError(f"{path}: a QALD document has a 'questions' array")
    for index, item in enumerate(questions):
        yield _qald_record(index, item, fields)


def _qald_record(index: int, item: Any, fields: FieldMap) -> Record:
    if not isinstance(item, dict):
        return Record(index, index + 1, None, None, error=f"question {index + 1} is not an object")
    record_id = item.get(fields.id or "id", index + 1)
    if not isinstance(record_id, str | int) or isinstance(record_id, bool):
        record_id = index + 1
    question = paraphrase = None
    texts = item.get(fields.question or "question")
    if isinstance(texts, list):
        by_lang = {t.get("language"): t.get("string") for t in texts if isinstance(t, dict)}
        question = _text(by_lang.get(fields.lang))
    elif isinstance(texts, str):
        question = texts
    query = item.get(fields.sparql or "query")
    sparql = query.get("sparql") if isinstance(query, dict) else query
    gold, boolean = _qald_answers(item.get("answers"))
    error = "" if isinstance(sparql, str) else "no 'query.sparql' string"
    return Record(index, record_id, question, sparql if isinstance(sparql, str) else None,
                  paraphrase, gold, boolean, error)


def _qald_answers(answers: Any) -> tuple[tuple[str, ...] | None, bool | None]:
    """Gold answer values (every binding of every variable) or the gold boolean."""
    if not isinstance(answers, list) or not answers:
        return None, None
    values: list[str] = []
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        if isinstance(answer.get("boolean"), bool):
            return None, answer["boolean"]
        bindings = (answer.get("results") or {}).get("bindings")
        for binding in bindings if isinstance(bindings, list) else ():
            if isinstance(binding, dict):
                values.extend(str(v.get("value")) for v in binding.values()
                              if isinstance(v, dict) and "value" in v)
    return tuple(sorted(set(values))), None
