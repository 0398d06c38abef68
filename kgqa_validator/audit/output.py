"""Output files: ``pairs.jsonl`` rows and ``summary.json``, both read back from disk.

The summary is computed from ``pairs.jsonl`` after the run (streaming, one row at a time), so a
resumed run summarises every pair, including those written before the interruption.
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kgqa_validator.audit.reasons import DIAGNOSTIC_MEANINGS, GROUP_REASONS, PAIR_REASONS

HISTOGRAM_LOW, HISTOGRAM_HIGH, HISTOGRAM_BINS = -0.2, 1.0, 24
WORST = 20


def dump(row: dict[str, Any]) -> str:
    """One JSON line; a lone surrogate (an undecodable input byte) is written as its escape."""
    text = json.dumps(row, ensure_ascii=False, default=str)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_rows(stream: IO[str], rows: list[dict[str, Any]], skip_below: int) -> int:
    """Append the rows of records at or after ``skip_below``; flush; return how many."""
    written = 0
    for row in rows:
        if row["index"] >= skip_below:
            stream.write(dump(row) + "\n")
            written += 1
    stream.flush()
    return written


def read_rows(pairs: Path) -> Iterator[dict[str, Any]]:
    with open(pairs, encoding="utf-8", errors="surrogateescape") as stream:
        for line in stream:
            if line.endswith("\n"):
                yield json.loads(line)


def _sort_key(row: dict[str, Any]) -> tuple[float, int]:
    """Lowest score first; a pair with no score (invalid query, missing question) first of all."""
    score = row.get("score")
    return (score if isinstance(score, int | float) else -9.0, row["index"])


def describe(code: str) -> str:
    return PAIR_REASONS.get(code) or GROUP_REASONS.get(code) or DIAGNOSTIC_MEANINGS.get(code) or (
        "a diagnostic of the validator or a plugin (see the Diagnostics table in the README)")


def summarise(pairs: Path, report_limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(summary, flagged)``: the summary, and the ``report_limit`` flagged rows ranked lowest
    by score (what the HTML report's table shows)."""
    counts: Counter[str] = Counter()
    total = flagged_total = scored = valid = 0
    bins = [0] * HISTOGRAM_BINS
    width = (HISTOGRAM_HIGH - HISTOGRAM_LOW) / HISTOGRAM_BINS
    worst: list[tuple[float, int, dict[str, Any]]] = []  # max-heap by (-score) of the lowest
    flagged: list[tuple[float, int, dict[str, Any]]] = []
    threshold = None
    for row in read_rows(pairs):
        total += 1
        reasons = row.get("reasons") or []
        counts.update(reasons)
        valid += bool(row.get("valid"))
        score = row.get("score")
        if row.get("threshold") is not None:
            threshold = row["threshold"]
        if isinstance(score, int | float):
            scored += 1
            slot = int((min(max(score, HISTOGRAM_LOW), HISTOGRAM_HIGH - 1e-9) - HISTOGRAM_LOW) // width)
            bins[slot] += 1
            _keep_lowest(worst, row, WORST)
        if reasons:
            flagged_total += 1
            _keep_lowest(flagged, row, report_limit)
    summary = {
        "pairs": total,
        "flagged": flagged_total,
        "valid_queries": valid,
        "scored": scored,
        "threshold": threshold,
        "reasons": {code: {"count": n, "meaning": describe(code)}
                    for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))},
        "histogram": {"low": HISTOGRAM_LOW, "high": HISTOGRAM_HIGH, "counts": bins},
        "lowest_scored": [_brief(r) for r in _ranked(worst)],
    }
    return summary, _ranked(flagged)


def _keep_lowest(heap: list[tuple[float, int, dict[str, Any]]], row: dict[str, Any],
                 limit: int) -> None:
    score, index = _sort_key(row)
    item = (-score, -index, row)
    if len(heap) < limit:
        heapq.heappush(heap, item)
    elif limit and item > heap[0]:
        heapq.heapreplace(heap, item)


def _ranked(heap: list[tuple[float, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for _, _, row in sorted(heap, key=lambda item: (-item[0], -item[1]))]


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("id", "index", "score", "reasons", "question", "sparql")}


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8", errors="backslashreplace")
    os.replace(tmp, path)
