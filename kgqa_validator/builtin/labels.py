"""Built-in label source: local JSON files of ``{"Q42": "Douglas Adams", ...}``."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from kgqa_validator.config import Settings
from kgqa_validator.errors import DataFormatError
from kgqa_validator.hookspecs import hookimpl

_CACHE: dict[tuple[str, float], dict[str, str]] = {}
_LOCK = threading.Lock()


def load_labels(path: str | Path) -> dict[str, str]:
    """Read a labels file (cached by path and modification time).

    Raises :class:`DataFormatError` naming the problem when the file is not a JSON object
    of id -> label strings.
    """
    file = Path(path)
    try:
        key = (str(file.resolve()), file.stat().st_mtime)
    except OSError as exc:
        raise DataFormatError(f"labels file {file}: {exc.strerror or exc}") from exc
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"labels file {file}: cannot read it ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"labels file {file}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise DataFormatError(f'labels file {file}: expected an object like {{"Q42": "Douglas Adams"}}')
    labels = {str(k): v for k, v in data.items() if isinstance(v, str) and v.strip()}
    with _LOCK:
        _CACHE[key] = labels
    return labels


@hookimpl(trylast=True)
def kgqa_resolve_labels(ids: Sequence[str], settings: Settings) -> Mapping[str, str] | None:
    if not settings.labels_files:
        return None
    found: dict[str, str] = {}
    for path in settings.labels_files:
        labels = load_labels(path)
        for id_ in ids:
            if id_ not in found and id_ in labels:
                found[id_] = labels[id_]
    return found
