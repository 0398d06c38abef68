"""Built-in label source: local JSON files of ``{"Q42": "Douglas Adams", ...}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kgqa_validator.config import Settings
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.label_files import load_labels

__all__ = ["kgqa_resolve_labels", "load_labels"]


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
