"""The one spelling of a Wikidata id (``Q42``, ``P31``, ``L7``), for every module that reads ids.

A leaf module (it imports nothing from the package), so that the parser, the label sources,
the CLI and the scoring text can all use it without depending on each other.  Digits are
ASCII only (``\\d`` would accept ``Q١``) and an id has no leading zero (``Q0``, ``Q042`` are
not ids).
"""

from __future__ import annotations

import re

ID_PATTERN = r"[QPL][1-9][0-9]*"
"""The pattern text, for embedding in larger patterns (no anchors, no groups)."""

WIKIDATA_ID = re.compile(rf"^{ID_PATTERN}$")
"""A whole string that is one id: ``WIKIDATA_ID.match("Q42")``."""

PREFIXED_ID = re.compile(rf"^[A-Za-z]+:({ID_PATTERN})$")
"""A prefixed name whose local part is an id (``wd:Q42``, ``wdt:P31``); group 1 is the id."""


def is_wikidata_id(text: str) -> bool:
    """Whether ``text`` is exactly one Wikidata id."""
    return WIKIDATA_ID.match(text) is not None
