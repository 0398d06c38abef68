"""Built-in ``kgqa_parse``: the guarded two-parser pipeline of :mod:`kgqa_validator.parsing`."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence

from kgqa_validator.config import Settings
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.parsing.guard import ParserPool
from kgqa_validator.types import Candidate, Mode, ParsedQuery

# Worker processes are expensive to start, so pools live for the process and are shared by
# every validator with the same parse options.
_POOLS: dict[tuple[object, ...], ParserPool] = {}
_LOCK = threading.Lock()


def pool_for(settings: Settings) -> ParserPool:
    key = (
        tuple(sorted(settings.prefixes.items())), settings.mode, settings.max_query_chars,
        settings.max_depth, settings.parse_timeout_s, settings.parse_workers,
    )
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ParserPool(
                settings.prefixes, wikidata=settings.mode is Mode.WIKIDATA,
                max_chars=settings.max_query_chars, max_depth=settings.max_depth,
                timeout_s=settings.parse_timeout_s, workers=settings.parse_workers,
            )
            _POOLS[key] = pool
        return pool


@atexit.register
def close_pools() -> None:
    with _LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()


@hookimpl(trylast=True)
def kgqa_parse(candidates: Sequence[Candidate], settings: Settings) -> Sequence[ParsedQuery]:
    return pool_for(settings).parse_many([c.sparql for c in candidates])
