"""Rebuild the shipped Wikidata property table (kgqa_validator/data/properties.tsv.gz).

Input: a JSON-lines dump with one property per line, ``{"id": "P19", "label": "place of birth",
"datatype": "wikibase-item", ...}`` (the format of ``../shared/data/wikidata-properties/
properties.jsonl``; extra fields are ignored). To refresh from Wikidata itself, produce that
file from ``wbgetentities`` (ids from ``Special:ListProperties``) or from the JSON dump
(``latest-all.json.gz``, entities whose ``type`` is ``property``: ``labels.en.value``,
``datatype``), then run::

    python scripts/build_properties.py path/to/properties.jsonl

Output: gzipped TSV, one line per property, ``id<TAB>label<TAB>datatype`` sorted by numeric id,
with a first comment line naming the source and count. Written deterministically (gzip mtime
0), so the same dump gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "kgqa_validator" / "data" / "properties.tsv.gz"


def clean(text: object) -> str:
    return " ".join(str(text).split()) if isinstance(text, str) else ""


def build(source: Path, output: Path) -> int:
    rows: dict[int, tuple[str, str, str]] = {}
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            pid = str(record.get("id", ""))
            if not (pid.startswith("P") and pid[1:].isdigit()):
                raise SystemExit(f"{source}:{number}: not a property id: {pid!r}")
            rows[int(pid[1:])] = (pid, clean(record.get("label")), clean(record.get("datatype")))
    lines = [f"# {len(rows)} Wikidata properties from {source.name}: id, English label, datatype"]
    lines += ["\t".join(rows[key]) for key in sorted(rows)]
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="properties JSON lines")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    count = build(args.source, args.output)
    print(f"{count} properties -> {args.output} ({args.output.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
