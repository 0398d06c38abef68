"""The one validator a service process shares between requests.

Requests run on a small pool of threads (``ServiceSettings.workers``): the pipeline is
CPU-bound and the encoder, the parser workers and the executors each serialise their own
work, so more threads than cores only add latency.  A request waits for a thread and runs
within ``request_timeout_s`` in total; one that times out while still queued is dropped, one
already running finishes in the background (its thread stays busy, which is the back-pressure
that keeps a flood from piling up unbounded work).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from kgqa_validator.service.config import ServiceSettings
from kgqa_validator.service.errors import ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 32  # /check queries parsed between two looks at the request's deadline

WARM_UP_QUESTION = "Who is the author of The Hitchhiker's Guide to the Galaxy?"
WARM_UP_QUERY = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"


def base_settings(service: ServiceSettings) -> Any:
    """The pipeline settings with everything that contacts an endpoint off unless allowed."""
    settings = service.validator
    if not service.allow_execute:
        settings = replace(settings, execute=False, endpoint_labels=False, check_unknown_ids=False)
    return settings


class Engine:
    """Validator, thread pool and limits of one service process."""

    def __init__(self, service: ServiceSettings) -> None:
        from kgqa_validator.plugins import get_plugin_manager
        from kgqa_validator.validator import Validator

        self.service = service
        self.pm = get_plugin_manager(autoload=False if service.no_plugins else None,
                                     block=service.block)
        self.validator = Validator(base_settings(service), plugin_manager=self.pm)
        self._variants: dict[tuple[float | None, bool], Any] = {}
        self._variants_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, service.workers),
                                        thread_name_prefix="kgqa-service")
        self.ready = False

    # -- life cycle ------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the model and start the parser now, so the first request does not pay for it."""
        if self.service.allow_execute and self.validator.settings.execute:
            from kgqa_validator.execution import check_settings

            check_settings(self.validator.settings)
        self.validator.validate(WARM_UP_QUESTION, [WARM_UP_QUERY], execute=False)
        self.ready = True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- running ---------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """``fn(*args)`` on the pool, within the request time limit."""
        future = self._pool.submit(fn, *args)
        limit = timeout_s if timeout_s is not None else self.service.request_timeout_s
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limit)
        except TimeoutError:
            future.cancel()  # dropped if still queued; a running one finishes on its own
            raise ServiceError("timeout", 503,
                               f"the request did not finish within {limit:g} s") from None

    def variant(self, threshold: float | None, execute: bool) -> Any:
        """The validator for a request's options (the model and plugins are shared)."""
        from kgqa_validator.validator import Validator

        if execute and not self.service.allow_execute:
            raise ServiceError("execute_not_allowed", 403,
                               "this service does not execute queries (start it with "
                               "--allow-execute and --endpoint URL or --data FILE)")
        if threshold is None and not execute:
            return self.validator
        key = (threshold, execute)
        with self._variants_lock:
            found = self._variants.get(key)
            if found is None:
                if len(self._variants) > 64:  # arbitrary thresholds must not grow memory
                    self._variants.clear()
                found = Validator(replace(self.validator.settings, threshold=threshold,
                                          execute=execute), plugin_manager=self.pm)
                self._variants[key] = found
            return found

    # -- the operations (called on the pool) -----------------------------------------------

    def validate(self, question: str, candidates: Sequence[str], threshold: float | None = None,
                 execute: bool = False) -> dict[str, Any]:
        from kgqa_validator.report_json import report_to_json

        self.check_candidates(len(candidates))
        validator = self.variant(threshold, execute)
        return report_to_json(validator.validate(question, list(candidates), execute=execute))

    def check(self, queries: Sequence[str], question: str = "",
              deadline: float | None = None) -> list[dict[str, Any]]:
        from kgqa_validator.report_json import assessment_to_json

        self.check_queries(len(queries))
        out: list[dict[str, Any]] = []
        # In chunks, so that a request past its time limit stops instead of holding a thread
        # for the rest of a thousand hostile queries.
        for start in range(0, len(queries), CHUNK):
            self.check_deadline(deadline)
            chunk = list(queries[start:start + CHUNK])
            out.extend({"sparql": q, **assessment_to_json(a)}
                       for q, a in zip(chunk, self.validator.check(chunk, question), strict=True))
        return out

    def deadline(self) -> float:
        return time.monotonic() + self.service.request_timeout_s

    def check_deadline(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise ServiceError("timeout", 503, "the request did not finish within "
                               f"{self.service.request_timeout_s:g} s")

    def check_queries(self, count: int) -> None:
        if count > self.service.max_queries:
            raise ServiceError("too_many_queries", 422,
                               f"{count} queries; this service takes at most "
                               f"{self.service.max_queries} per request")

    def check_candidates(self, count: int) -> None:
        if count > self.service.max_candidates:
            raise ServiceError("too_many_candidates", 422,
                               f"{count} candidates; this service takes at most "
                               f"{self.service.max_candidates} per question")
