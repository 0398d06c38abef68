"""The polite HTTP executor: SPARQLWrapper (:mod:`.transport`) behind the rules of
:mod:`.politeness` (identification, one request at a time, 429 waits, 403 stop, retries), a
cache and these verdict rules:

* **Timeouts are verdicts.**  A 500 whose body names ``TimeoutException`` (the query
  service's 60 s deadline) and no answer within ``settings.timeout_s`` (default 65 s, so the
  server's own deadline fires first) both give ``status="timeout"``; neither is retried,
  since the same query would time out again.
* **Cache.**  Identical queries (same endpoint, text, form and row limit) are answered from
  ``results.sqlite3`` in the cache directory for ``settings.cache_ttl_s`` (default 300 s,
  the query service's own cache time); only verdicts are kept (ok, empty, rejected, timeout).
* **Unreadable answers.**  A truncated 200, a 200 that is not SPARQL JSON (such as the
  query service's "please set a user-agent" text page) and an HTML error page are
  ``invalid_response``, never "0 results".
* **Requests.**  GET (cacheable by the server) while the URL-encoded query is at most
  1,500 characters, POST beyond; JSON results (Turtle for CONSTRUCT/DESCRIBE).
  SPARQLWrapper's ``setQuery`` is never called: its query-type regular expression is cubic
  on crafted input (4 KB: 2.4 s) and the form is already known from the parse.

Sleeping, the clocks and the jitter are injectable (``sleep``, ``clock``, ``wall``, ``rng``),
and so is the ``transport``, so every rule can be tested against a real local server without
waiting.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from kgqa_validator.errors import ConfigurationError, EndpointBlocked, EndpointError
from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.cache import ResultCache
from kgqa_validator.execution.politeness import (
    REGISTRY,
    EndpointRegistry,
    RetryPolicy,
    check_endpoint_url,
    retry_after,
    user_agent,
)
from kgqa_validator.execution.refusal import answers_label_service
from kgqa_validator.execution.results import (
    CACHEABLE,
    error_message,
    execution_from_json,
    execution_to_json,
    from_json,
    from_rdf,
    looks_like_html,
    make_execution,
    short,
)
from kgqa_validator.execution.transport import (
    MAX_RESPONSE_BYTES,
    ConnectFailure,
    HttpAnswer,
    HttpRequest,
    ReadTimeout,
    Transport,
    sparqlwrapper_transport,
)
from kgqa_validator.types import Execution, Form

log = logging.getLogger(__name__)

__all__ = ["HttpExecutor"]

_TIMEOUT_MARKERS = (b"TimeoutException", b"QueryTimeout")




class HttpExecutor(Executor):
    """Execute on a SPARQL endpoint over HTTP, politely (see the module docstring)."""

    def __init__(
        self,
        endpoint: str,
        *,
        contact: str | None = None,
        timeout_s: float = 65.0,
        cache_dir: Path | None = None,
        cache_ttl_s: float = 300.0,
        max_in_flight: int = 1,
        transport: Transport | None = None,
        registry: EndpointRegistry | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        check_endpoint_url(endpoint)
        if timeout_s <= 0:
            raise ConfigurationError(f"timeout must be positive, not {timeout_s}")
        self.endpoint = self.name = endpoint
        self.host = (urllib.parse.urlsplit(endpoint).netloc or endpoint).lower()
        self.user_agent = user_agent(endpoint, contact)
        self.answers_label_service = answers_label_service(endpoint)
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.transport = transport or sparqlwrapper_transport
        self.registry = registry if registry is not None else REGISTRY
        self.policy = policy or RetryPolicy()
        self.sleep, self.clock, self.wall = sleep, clock, wall
        self.rng = rng or random.Random()
        self.cache = ResultCache(cache_dir, cache_ttl_s, now=wall) \
            if cache_dir is not None and cache_ttl_s > 0 else None

    def run(self, query: str, form: Form, max_rows: int) -> Execution:
        self._check_blocked()
        key = ResultCache.key(form.value, max_rows, query)
        if self.cache is not None:
            cached = self.cache.get(self.endpoint, key)
            if cached is not None:
                log.info("answer for a query to %s served from the cache", self.endpoint)
                return execution_from_json(cached)
        request = HttpRequest(self.endpoint, query, form, self.user_agent, self.timeout_s)
        with self.registry.slot(self.host, self.max_in_flight):
            execution = self._send(request, max_rows)
        if self.cache is not None and execution.status in CACHEABLE:
            self.cache.put(self.endpoint, key, execution_to_json(execution))
        return execution

    # -- internals ------------------------------------------------------------------------

    def _check_blocked(self) -> None:
        reason = self.registry.blocked_reason(self.host)
        if reason is not None:
            raise EndpointBlocked(reason)

    def _wait_turn(self) -> None:
        """Honour a Retry-After that this or another thread received for the host."""
        remaining = self.registry.wait_until(self.host) - self.clock()
        if remaining > self.policy.max_wait_s:
            raise EndpointError(f"{self.endpoint} asked this client to wait {remaining:.0f} s "
                                "more (429 Too Many Requests); try again later")
        if remaining > 0:
            log.info("waiting %.1f s before the next request to %s (Retry-After)",
                     remaining, self.host)
            self.sleep(remaining)

    def _send(self, request: HttpRequest, max_rows: int) -> Execution:
        failures = throttled = 0
        while True:
            self._wait_turn()
            self._check_blocked()
            started = self.clock()
            try:
                answer = self.transport(request)
            except ReadTimeout as exc:
                return make_execution(
                    "timeout", self.endpoint, elapsed_s=self.clock() - started,
                    message=f"{exc} (client-side limit): the query is too expensive for the "
                            "endpoint, or the endpoint is overloaded")
            except ConnectFailure as exc:
                failures += 1
                if failures >= self.policy.attempts:
                    raise EndpointError(
                        f"{self.endpoint}: {exc}; gave up after {failures} attempts") from exc
                self._backoff(failures, None, str(exc))
                continue
            elapsed = self.clock() - started
            status = answer.status

            if status == 429:
                throttled += 1
                asked = retry_after(answer.headers, self.wall())
                wait = self.policy.default_retry_after_s if asked is None else asked
                self.registry.defer(self.host, self.clock() + wait)
                if throttled >= self.policy.throttled_answers or wait > self.policy.max_wait_s:
                    raise EndpointError(
                        f"{self.endpoint} is throttling this client (429 Too Many Requests, "
                        f"Retry-After {wait:g} s, {throttled} times in a row); try again later")
                log.warning("%s answered 429: waiting %g s as asked", self.endpoint, wait)
                continue
            if status == 403:
                reason = (
                    f"{self.endpoint} answered 403 Forbidden ({error_message(answer.body)}); no "
                    f"further request is sent to {self.host} by this process. The Wikidata "
                    "query service does this to clients without a descriptive User-Agent "
                    "(--contact) or that ignored its Retry-After: check both and wait before "
                    "trying again")
                self.registry.block(self.host, reason)
                # Not a warning too: the caller reports EndpointBlocked, once.
                log.info("%s", reason)
                raise EndpointBlocked(reason)
            if status in (502, 503, 504):
                failures += 1
                if failures >= self.policy.attempts:
                    raise EndpointError(f"{self.endpoint} answered {status} {failures} times in "
                                        "a row; it is unavailable, try again later")
                self._backoff(failures, retry_after(answer.headers, self.wall()), f"HTTP {status}")
                continue
            return self._verdict(answer, request.form, max_rows, elapsed)

    def _backoff(self, failure: int, asked: float | None, why: str) -> None:
        delay = asked if asked is not None and asked <= self.policy.max_wait_s \
            else self.policy.backoff(failure, self.rng)
        log.info("%s: %s; attempt %d of %d in %.1f s", self.endpoint, why, failure + 1,
                 self.policy.attempts, delay)
        self.sleep(delay)

    def _verdict(self, answer: HttpAnswer, form: Form, max_rows: int, elapsed: float) -> Execution:
        status, body = answer.status, answer.body
        if 300 <= status < 400 and "location" in answer.headers:
            # Only a redirect to another host comes back: the transport follows the others.
            where = short(answer.headers["location"], 200)
            return make_execution("error", self.endpoint, elapsed_s=elapsed,
                                  message=f"the endpoint redirected the query ({status}) to "
                                          f"another host, {where!r}; not followed (give that "
                                          "URL as the endpoint if it is the one meant)")
        if 200 <= status < 300:
            return self._read_results(answer, form, max_rows, elapsed)
        if status == 500 and any(marker in body for marker in _TIMEOUT_MARKERS):
            return make_execution("timeout", self.endpoint, elapsed_s=elapsed,
                                  message="the endpoint stopped the query at its time limit "
                                          "(server-side timeout)")
        if looks_like_html(body) and status >= 500:
            return make_execution("invalid_response", self.endpoint, elapsed_s=elapsed,
                                  message=f"the endpoint answered {status} with "
                                          f"{error_message(body)} instead of SPARQL results")
        if status in (401, 404, 405, 407):
            raise EndpointError(f"{self.endpoint} answered {status} ({error_message(body)}): "
                                "check the endpoint URL and its access rules")
        if 400 <= status < 500:
            return make_execution("rejected", self.endpoint, elapsed_s=elapsed,
                                  message=f"the endpoint rejected the query ({status}): "
                                          f"{error_message(body)}")
        if status >= 500:
            return make_execution("error", self.endpoint, elapsed_s=elapsed,
                                  message=f"the endpoint failed on the query ({status}): "
                                          f"{error_message(body)}")
        raise EndpointError(f"{self.endpoint} answered HTTP {status}, which a SPARQL endpoint "
                            "should not")

    def _read_results(self, answer: HttpAnswer, form: Form, max_rows: int,
                      elapsed: float) -> Execution:
        body, media = answer.body, answer.media_type
        if answer.too_large:
            return make_execution("error", self.endpoint, elapsed_s=elapsed,
                                  message=f"the answer is larger than {MAX_RESPONSE_BYTES >> 20} MB; "
                                          "add a LIMIT")
        if not answer.complete:
            return make_execution("invalid_response", self.endpoint, elapsed_s=elapsed,
                                  message="the connection closed before the answer was complete "
                                          "(truncated); it says nothing about the query")
        if looks_like_html(body) or media == "text/html":
            return make_execution("invalid_response", self.endpoint, elapsed_s=elapsed,
                                  message=f"the endpoint answered {error_message(body)} instead "
                                          "of SPARQL results")
        if form in (Form.CONSTRUCT, Form.DESCRIBE):
            return from_rdf(body, media, self.endpoint, max_rows, elapsed)
        if "json" not in media:
            excerpt = short(body[:200].decode("utf-8", errors="replace"), 120)
            return make_execution(
                "invalid_response", self.endpoint, elapsed_s=elapsed,
                message=f"the endpoint answered {media or 'no content type'} instead of SPARQL "
                        f"JSON results: {excerpt!r}")
        return from_json(body, form, self.endpoint, max_rows, elapsed)
