"""Built-in property source: the property table shipped with the package.

Labels for every Wikidata property id (the lowest-priority label source: label files and the
endpoint win), and ``unknown_id`` for a property id that does not exist, with no network.
Switched off by ``Settings(property_table=False)`` (``--no-property-table``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from kgqa_validator.config import Settings
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.parsing.parse import DiagnosticBuilder
from kgqa_validator.properties import PropertyTable, shipped_properties
from kgqa_validator.scoring_text import ids_in
from kgqa_validator.types import Candidate, Diagnostic, Mode, ParsedQuery, Question, Severity

PRODUCER = "properties"


def table_for(settings: Settings) -> PropertyTable | None:
    """The property table these settings use, or ``None`` when it is switched off."""
    if not settings.property_table or settings.mode is not Mode.WIKIDATA:
        return None
    return shipped_properties()


@hookimpl(trylast=True)
def kgqa_resolve_labels(ids: Sequence[str], settings: Settings) -> Mapping[str, str] | None:
    table = table_for(settings)
    if table is None:
        return None
    found = {}
    for id_ in ids:
        label = table.label(id_) if id_.startswith("P") else None
        if label:
            found[id_] = label
    return found


@hookimpl(trylast=True)
def kgqa_check(
    question: Question, candidate: Candidate, parsed: ParsedQuery, settings: Settings
) -> Sequence[Diagnostic] | None:
    table = table_for(settings)
    if table is None or not parsed.valid_syntax:
        return None
    out = DiagnosticBuilder(candidate.sparql, PRODUCER)
    for id_ in ids_in(candidate.sparql, settings.prefixes):
        if table.missing(id_):
            match = re.search(rf"{id_}(?!\d)", candidate.sparql)
            offset = match.start() if match else -1
            out.add("unknown_id", Severity.ERROR,
                    f"{id_} is not a Wikidata property (the shipped table knows {len(table)} "
                    f"properties up to P{table.max_number}): probably a hallucinated id",
                    offset if offset >= 0 else None, len(id_))
    return out.items
