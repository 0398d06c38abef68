"""Entity labels for the LC-QuAD-NoA entity twins: what ``--endpoint-labels`` would give them.

The NoA target cannot be measured offline as a user with the endpoint would meet it: an entity
twin differs from its original only in one Q-id, and no labels file here names both.  The
records themselves do: a twin's ``NNQT_question`` and its original's name their slots in
braces (``What is {nickname} of {Saltillo}`` / ``What is <nickname> of <Mike Krzyzewski> ?``),
and where exactly one slot differs and exactly one Q-id was swapped, that slot is the two
entities' labels.  This script writes those labels as a labels file, to measure the twins read
with labels (``evaluate --labels``: the ``noa_twins_verbalised`` sets).  Only the swapped ids
get labels; the shared ones stay ids, as they read alike in both candidates anyway.

    python benchmarks/noa_twin_labels.py ../shared/data/lc-quad-noa/train_balanced.json \\
        build/noa_twin_labels.json

Keep the output outside the package: it is a measuring aid built from a development file, not
a label source for run time.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from kgqa_validator.scoring_text import ids_in

SLOT = re.compile(r"\{([^{}]*)\}|<([^<>]*)>")


def slots(template: str | None) -> list[str]:
    return [(a or b).strip() for a, b in SLOT.findall(template or "")]


def entities(sparql: str) -> set[str]:
    return {i for i in ids_in(sparql) if i.startswith("Q")}


def twin_labels(records: list[dict]) -> tuple[dict[str, str], int]:
    """The labels file and how many entity twins it labels."""
    originals = {r["sparql_wikidata"]: r for r in records if r.get("has_answer") is not False}
    labels: dict[str, str] = {}
    twins = 0
    for twin in records:
        original = originals.get(twin.get("old_sparql_wikidata")) if twin.get("has_answer") is False else None
        if original is None:
            continue
        new = entities(twin["sparql_wikidata"]) - entities(original["sparql_wikidata"])
        old = entities(original["sparql_wikidata"]) - entities(twin["sparql_wikidata"])
        mine, theirs = slots(twin.get("NNQT_question")), slots(original.get("NNQT_question"))
        if len(new) != 1 or len(old) != 1 or len(mine) != len(theirs):
            continue
        differing = [(a, b) for a, b in zip(mine, theirs, strict=True) if a.lower() != b.lower()]
        if len(differing) != 1 or not all(differing[0]):
            continue
        labels[new.pop()], labels[old.pop()] = differing[0]
        twins += 1
    return labels, twins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("noa", type=Path, help="LC-QuAD-NoA JSON (train_balanced.json)")
    parser.add_argument("output", type=Path, help="labels file to write")
    args = parser.parse_args()
    labels, twins = twin_labels(json.loads(args.noa.read_text(encoding="utf-8")))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{twins} entity twins labelled ({len(labels)} ids) -> {args.output}")


if __name__ == "__main__":
    main()
