"""The local caches: query answers and labels, in SQLite files under the user's cache directory.

``settings.cache_dir`` (default: ``platformdirs.user_cache_dir("kgqa-validator")``) holds
``results.sqlite3`` (answers to identical queries, kept ``settings.cache_ttl_s`` seconds) and
``labels.sqlite3`` (labels, kept 30 days; "this id does not exist" kept 1 day, since new
items appear).  Entries are keyed by endpoint, so a test server never answers for Wikidata.

A cache that cannot be opened (read-only disk, corrupt file) is logged once and skipped:
caching saves requests, it is never a reason to fail.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

LABEL_TTL_S = 30 * 24 * 3600.0
UNKNOWN_ID_TTL_S = 24 * 3600.0

_SCHEMA = {
    "results": "CREATE TABLE IF NOT EXISTS results (endpoint TEXT, key TEXT, stored REAL, "
               "answer TEXT, PRIMARY KEY (endpoint, key))",
    "labels": "CREATE TABLE IF NOT EXISTS labels (endpoint TEXT, id TEXT, stored REAL, "
              "known INTEGER, label TEXT, PRIMARY KEY (endpoint, id))",
}


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("kgqa-validator"))


def cache_dir_for(configured: Path | None) -> Path:
    return Path(configured).expanduser() if configured is not None else default_cache_dir()


class _SqliteFile:
    """One SQLite file with one table; a connection per operation keeps it thread-safe."""

    def __init__(self, directory: Path, table: str, now: Callable[[], float] = time.time) -> None:
        self.path = directory / f"{table}.sqlite3"
        self.table = table
        self.now = now
        self.broken = False
        self._lock = threading.Lock()
        self._ready = False

    def _with_db(self, action: Callable[[sqlite3.Connection], T], default: T) -> T:
        """``action(connection)`` in a transaction, or ``default`` when the cache is unusable."""
        if self.broken:
            return default
        try:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10)
            try:
                with self._lock:
                    if not self._ready:
                        connection.execute(_SCHEMA[self.table])
                        self._ready = True
                with connection:
                    return action(connection)
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as exc:
            self.broken = True
            log.warning("cache %s is not usable (%s); continuing without it", self.path, exc)
            return default


class ResultCache(_SqliteFile):
    """Answers to identical queries for ``ttl_s`` seconds (``ttl_s <= 0``: off)."""

    def __init__(self, directory: Path, ttl_s: float, now: Callable[[], float] = time.time) -> None:
        super().__init__(directory, "results", now)
        self.ttl_s = ttl_s

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).hexdigest()

    def get(self, endpoint: str, key: str) -> str | None:
        if self.ttl_s <= 0:
            return None
        row = self._with_db(lambda db: db.execute(
            "SELECT stored, answer FROM results WHERE endpoint=? AND key=?",
            (endpoint, key)).fetchone(), None)
        if row is None or self.now() - row[0] > self.ttl_s:
            return None
        return str(row[1])

    def put(self, endpoint: str, key: str, answer: str) -> None:
        if self.ttl_s <= 0:
            return
        stored = self.now()
        self._with_db(lambda db: db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", (endpoint, key, stored, answer)),
            None)


class LabelCache(_SqliteFile):
    """Per endpoint: id -> (known, English label or None)."""

    def __init__(self, directory: Path, now: Callable[[], float] = time.time) -> None:
        super().__init__(directory, "labels", now)

    def get_many(self, endpoint: str, ids: Iterable[str]) -> dict[str, tuple[bool, str | None]]:
        wanted = list(dict.fromkeys(ids))
        now = self.now()

        def read(db: sqlite3.Connection) -> dict[str, tuple[bool, str | None]]:
            found: dict[str, tuple[bool, str | None]] = {}
            for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for id_, stored, known, label in db.execute(
                        f"SELECT id, stored, known, label FROM labels WHERE endpoint=? "
                        f"AND id IN ({marks})", (endpoint, *chunk)):
                    ttl = LABEL_TTL_S if known else UNKNOWN_ID_TTL_S
                    if now - stored <= ttl:
                        found[id_] = (bool(known), label)
            return found

        return self._with_db(read, {})

    def put_many(self, endpoint: str, entries: dict[str, tuple[bool, str | None]]) -> None:
        if not entries:
            return
        now = self.now()
        rows = [(endpoint, id_, now, int(known), label) for id_, (known, label) in entries.items()]
        self._with_db(lambda db: db.executemany(
            "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)", rows), None)
