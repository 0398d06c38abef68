"""``--resume``: where an interrupted audit stops, and whether it is the same audit.

``pairs.jsonl`` is append-only and flushed batch by batch; a kill (even ``kill -9``) leaves
finished lines and at most one cut-off line.  Resuming drops the cut-off line, checks that the
last complete line is the record it should be, and continues with the next record; pass 1
(the groups) is recomputed, so the rows written after the resume are the rows an
uninterrupted run writes.  ``run.json`` beside the output holds the input's identity and every
option that changes a row: resuming with another input or other options is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kgqa_validator.errors import ConfigurationError

RUN_FILE = "run.json"
PAIRS_FILE = "pairs.jsonl"


def fingerprint(dataset: Path, options: dict[str, Any]) -> dict[str, Any]:
    """What must not change between a run and its resumption."""
    stat = dataset.stat()
    return {"dataset": str(dataset.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "options": options}


def start(out: Path, run: dict[str, Any], resume: bool, force: bool) -> int:
    """Prepare ``out`` and return how many pairs are already done (0 for a fresh run)."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = out / PAIRS_FILE
    run_file = out / RUN_FILE
    if not resume:
        if pairs.exists() and pairs.stat().st_size and not force:
            raise ConfigurationError(
                f"{out} already holds an audit: --resume continues it, --force starts over")
        pairs.write_bytes(b"")
        _write_json(run_file, run)
        return 0
    if not pairs.exists() or not run_file.exists():
        _write_json(run_file, run)
        pairs.write_bytes(b"")
        return 0
    try:
        previous = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{run_file} is unreadable ({exc}): start over with --force") from exc
    if previous != run:
        changed = sorted(k for k in set(previous) | set(run) if previous.get(k) != run.get(k))
        if "options" in changed:
            changed.remove("options")
            changed += sorted(k for k in set(previous.get("options", {})) | set(run["options"])
                              if previous.get("options", {}).get(k) != run["options"].get(k))
        raise ConfigurationError(f"--resume: the input or options differ from the interrupted "
                                 f"run ({', '.join(changed)}); start over with --force")
    return truncate_to_complete(pairs)


def truncate_to_complete(pairs: Path) -> int:
    """Drop a cut-off last line; return the number of complete lines (checked in order)."""
    done = 0
    keep = 0
    with open(pairs, "rb") as stream:
        for line in stream:
            if not line.endswith(b"\n"):
                break
            try:
                index = json.loads(line)["index"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(
                    f"{pairs}: line {done + 1} is not an audit row; start over with --force") from exc
            if index != done:
                raise ConfigurationError(
                    f"{pairs}: line {done + 1} holds record {index}, not {done}; start over with --force")
            done += 1
            keep += len(line)
    if keep != pairs.stat().st_size:
        with open(pairs, "r+b") as stream:
            stream.truncate(keep)
    return done


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
