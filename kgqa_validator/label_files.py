"""Labels files: JSON objects of ``{"Q42": "Douglas Adams", ...}``, read once per version.

A leaf module: the built-in label source (:mod:`kgqa_validator.builtin.labels`), training,
evaluation, the audit and the service all read labels files through :func:`load_labels`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kgqa_validator.errors import DataFormatError

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
