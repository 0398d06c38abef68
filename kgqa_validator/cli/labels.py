"""``kgqa-validator labels``: what the label sources (files, endpoint) say about some ids.

Through :meth:`Validator.explain_ids`, so a blocked plugin (``--block endpoint_labels``) is
not asked here either.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from kgqa_validator.cli.exits import EXIT_INVALID, EXIT_OK
from kgqa_validator.cli.options import add_common, add_endpoint, endpoint_settings, make_validator, prefixes
from kgqa_validator.config import Settings
from kgqa_validator.errors import UsageError
from kgqa_validator.ids import ID_PATTERN
from kgqa_validator.report_json import dumps

EXAMPLES = """\
examples:
  kgqa-validator labels Q42 wdt:P69 --contact me@example.org
  kgqa-validator labels Q42 Q5 --labels labels.json          (files only: no request)
  kgqa-validator labels Q42 --data graph.ttl --json"""

_ID_FORMS = re.compile(r"^(?:[A-Za-z]+:|https?://www\.wikidata\.org/(?:entity|prop(?:/[a-z-]+)*)/)?"
                       rf"({ID_PATTERN})$")


def add_parser(sub: Any, **kwargs: Any) -> None:
    labels = sub.add_parser(
        "labels", help="show what the label sources say about ids",
        description="Look ids up in the label files and, unless only files are given, on the "
                    "endpoint or data file: their English label, and whether the graph has "
                    "them at all (an unknown id is likely hallucinated).",
        epilog=EXAMPLES, **kwargs)
    labels.add_argument("ids", nargs="+", metavar="ID", help="Q42, P31, wd:Q42 or an entity IRI")
    labels.add_argument("--labels", action="append", default=[], type=Path, metavar="FILE",
                        help='JSON labels file (repeatable); alone, the endpoint is not asked')
    labels.add_argument("--json", action="store_true", help="machine-readable output")
    add_common(labels)
    add_endpoint(labels)
    labels.set_defaults(func=cmd_labels)


def normalise_id(text: str) -> str:
    match = _ID_FORMS.match(text.strip().strip("<>"))
    if match is None:
        raise UsageError(f"labels: {text!r} is not a Wikidata id (Q42, P31, wd:Q42, or its IRI)")
    return match.group(1)


def cmd_labels(args: argparse.Namespace) -> int:
    ids = list(dict.fromkeys(normalise_id(i) for i in args.ids))
    settings = endpoint_settings(args, Settings.for_mode(args.mode, prefixes(args.prefix)))
    table = make_validator(args, settings).property_table()
    # The shipped property table answers property ids offline.
    offline = table is not None and all(
        i.startswith("P") and (i in table or table.missing(i)) for i in ids)
    # The endpoint is asked unless only label files were given, or the table answers all.
    use_endpoint = bool(args.endpoint or args.data or not (args.labels or offline))
    settings = replace(settings, labels_files=tuple(args.labels), endpoint_labels=use_endpoint)
    validator = make_validator(args, settings)
    validator.check_setup()
    found = validator.explain_ids(ids)
    labels, unknown, unchecked, source = found.labels, found.unknown, found.unchecked, found.source
    if table is not None:
        unknown = unknown | {i for i in ids if table.missing(i)}

    def datatype(id_: str) -> str | None:
        return table.datatype(id_) if table is not None else None

    def known(id_: str) -> bool | None:
        by_table = table is not None and id_.startswith("P")
        if (source is None or id_ in unchecked) and not by_table:
            return None
        return id_ not in unknown

    if args.json:
        print(dumps({
            "endpoint": source,
            "files": [str(p) for p in args.labels],
            "ids": [{"id": i, "label": labels.get(i), "known": known(i),
                     # Properties also say what they hold (from the shipped property table).
                     **({"datatype": datatype(i)} if table is not None and i.startswith("P")
                        else {})}
                    for i in ids],
        }))
    else:
        for id_ in ids:
            kind = f"\t{datatype(id_)}" if datatype(id_) else ""
            if id_ in labels:
                print(f"{id_}\t{labels[id_]}{kind}")
            elif id_ in unknown:
                where = source or "the shipped property table"
                print(f"{id_}\t-\tunknown to {where} (likely a hallucinated id)")
            elif id_ in unchecked:
                print(f"{id_}\t-\tnot checked ({source} gave no usable answer){kind}")
            else:
                print(f"{id_}\t-\tno English label{kind}")
    return EXIT_OK if all(i in labels for i in ids) else EXIT_INVALID
