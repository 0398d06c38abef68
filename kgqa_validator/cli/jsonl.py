"""Reading the batch input of ``check --jsonl`` and ``rerank --jsonl``: bounded, never fatal.

Opening the files and ``--resume`` are :mod:`kgqa_validator.batch_io`'s; this module turns the
input into ``(line number, row or None, error)`` items, so that a bad line becomes an
``invalid_input`` result line instead of stopping the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kgqa_validator.batch_io import bounded_lines
from kgqa_validator.errors import DataFormatError

CHUNK = 256  # check --jsonl: lines parsed in parallel, then written (each flushed as written)
# One --jsonl record at most (a 10 MB query still fits, and is then diagnosed as too large);
# past this a line is reported and skipped (see batch_io.bounded_lines).
MAX_LINE_CHARS = 32 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; echoed back they would make the output unreadable.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as inf, and would be written as Infinity
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def json_lines(stream: IO[str], skip: int) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """``(line number, row or None, error)`` for each non-blank line after the first ``skip``
    non-blank ones (each wrote one output line, which is what ``--resume`` counts)."""
    records = 0
    for number, line in enumerate(bounded_lines(stream, MAX_LINE_CHARS), 1):
        if line is not None and not line.strip():
            continue
        records += 1
        if records <= skip:
            continue
        if line is None:
            yield number, None, f"line {number} is longer than {MAX_LINE_CHARS >> 20} MiB"
            continue
        try:
            row = json.loads(line, parse_constant=_reject_constant, parse_float=_finite_float)
        except ValueError as exc:  # JSONDecodeError, or what _reject_constant/_finite_float say
            yield number, None, f"line {number} is not JSON ({getattr(exc, 'msg', exc)})"
            continue
        except RecursionError:
            yield number, None, f"line {number} is JSON nested too deeply to read"
            continue
        if not isinstance(row, dict):
            yield number, None, f"line {number} is not a JSON object"
            continue
        yield number, row, ""


def input_error(number: int, message: str) -> dict[str, Any]:
    """The result line for an input line that could not be read."""
    return {"line": number, "valid": False, "diagnostics": [{
        "code": "invalid_input", "severity": "error", "message": message,
        "line": None, "column": None, "excerpt": "", "producer": "cli"}]}


def finished_lines_valid(path: str) -> bool:
    """Whether every finished line of a ``--resume``d output says ``"valid": true``."""
    with open(path, encoding="utf-8", errors="replace") as finished:
        for line in finished:
            try:
                if json.loads(line).get("valid") is not True:
                    return False
            except (json.JSONDecodeError, AttributeError, RecursionError):
                return False
    return True


def finished_lines_accepted(path: str) -> bool:
    """Whether every finished line of a ``--resume``d rerank output accepted a candidate."""
    with open(path, encoding="utf-8", errors="replace") as finished:
        for line in finished:
            try:
                ranking = json.loads(line).get("ranking")
            except (json.JSONDecodeError, AttributeError, RecursionError):
                return False
            if not isinstance(ranking, list) or not any(
                    isinstance(r, dict) and r.get("verdict") == "accepted" for r in ranking):
                return False
    return True


def read_candidates(path: Path) -> list[str]:
    """``rerank --candidates FILE``: one query per line, or a JSON array of strings."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: invalid JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise DataFormatError(f"{path}: JSON nested too deeply to read") from exc
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise DataFormatError(f"{path}: expected a JSON array of query strings")
        return data
    return [line.strip() for line in text.splitlines() if line.strip()]
