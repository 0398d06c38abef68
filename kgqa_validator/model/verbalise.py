"""Rewrite a query into the labelized form the encoder was trained on.

The form is the one of the public labelized LC-QuAD 2.0 copy: ``wd:Q42`` becomes
``wd:douglas_adams``, ``{``/``}`` become ``[``/``]`` and the ``SELECT``/``WHERE``/``ASK``
keywords are lower-cased.  An id with no label stays an id, so a partly known query still
verbalises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ID = re.compile(r"\b(wd|wdt|p|ps|pq|psv|pqv|pr|wdno|wdtn|psn|pqn):([QPL]\d+)\b")
_KEYWORDS = re.compile(r"\b(SELECT|WHERE|ASK)\b", re.IGNORECASE)
_UNSAFE = re.compile(r"[^\w\-]+")


def label_token(label: str) -> str:
    """A label as a prefixed-name local part: lower case, words joined by ``_``."""
    return _UNSAFE.sub("_", label.strip().lower()).strip("_") or "_"


def ids_in(sparql: str) -> list[str]:
    """Wikidata ids (Q/P/L numbers) the query mentions, without duplicates, in order."""
    return list(dict.fromkeys(m.group(2) for m in _ID.finditer(sparql)))


def verbalise(sparql: str, labels: Mapping[str, str]) -> str:
    """Return the labelized form of ``sparql`` using ``labels`` (id -> English label)."""

    def replace(match: re.Match[str]) -> str:
        label = labels.get(match.group(2))
        if not label:
            return match.group(0)
        return f"{match.group(1)}:{label_token(label)}"

    text = _ID.sub(replace, sparql)
    text = text.replace("{", "[").replace("}", "]")
    return _KEYWORDS.sub(lambda m: m.group(1).lower(), text)
