"""Wikidata's property table, shipped with the package: id -> English label and datatype.

``kgqa_validator/data/properties.tsv.gz`` holds every property Wikidata had when it was built
(``scripts/build_properties.py`` rebuilds it from a newer dump).  It is read once, lazily, and
is what lets the scorer read ``wdt:P19`` as ``wdt:place_of_birth`` with no label file and no
network, the lints know that ``P1082`` holds a quantity, and the checks flag a property id that
does not exist.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from pathlib import Path

from kgqa_validator.errors import DataFormatError

SHIPPED_TABLE = Path(__file__).resolve().parent / "data" / "properties.tsv.gz"


@dataclass(frozen=True)
class Property:
    id: str
    label: str | None
    datatype: str


class PropertyTable:
    """Properties by id (``"P19"``); ``max_number`` is the highest id the table knows, so an id
    above it may simply be newer than the table rather than nonexistent."""

    def __init__(self, rows: dict[str, Property]) -> None:
        self._rows = rows
        self.max_number = max((int(pid[1:]) for pid in rows), default=0)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, pid: object) -> bool:
        return pid in self._rows

    def get(self, pid: str) -> Property | None:
        return self._rows.get(pid)

    def label(self, pid: str) -> str | None:
        row = self._rows.get(pid)
        return row.label if row else None

    def datatype(self, pid: str) -> str | None:
        row = self._rows.get(pid)
        return row.datatype if row else None

    def labels(self) -> dict[str, str]:
        """id -> label for every property that has an English label."""
        return {pid: row.label for pid, row in self._rows.items() if row.label}

    def missing(self, pid: str) -> bool:
        """Whether ``pid`` (``P<n>``) is known not to exist: within the table's range, absent."""
        if not (pid.startswith("P") and pid[1:].isdigit()):
            return False
        return pid not in self._rows and int(pid[1:]) <= self.max_number

    def same_datatype(self, pid: str) -> list[str]:
        """Other properties of ``pid``'s datatype, in id order."""
        kind = self.datatype(pid)
        return [p for p, row in self._rows.items() if row.datatype == kind and p != pid]

    @classmethod
    def read(cls, path: str | Path) -> PropertyTable:
        file = Path(path)
        try:
            with gzip.open(file, "rt", encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"property table {file}: cannot read it ({exc})") from exc
        rows: dict[str, Property] = {}
        for number, line in enumerate(lines, 1):
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not parts[0][1:].isdigit():
                raise DataFormatError(f"property table {file}:{number}: expected id, label, datatype")
            rows[parts[0]] = Property(parts[0], parts[1] or None, parts[2])
        return cls(rows)


_SHIPPED: PropertyTable | None = None
_LOCK = threading.Lock()


def shipped_properties() -> PropertyTable:
    """The table shipped with the package (read on first use, then shared)."""
    global _SHIPPED
    with _LOCK:
        if _SHIPPED is None:
            _SHIPPED = PropertyTable.read(SHIPPED_TABLE)
        return _SHIPPED
