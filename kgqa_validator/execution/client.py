"""The polite HTTP executor: SPARQLWrapper behind retries, waits, a cache and a 403 stop.

The rules (for the Wikidata query service, whose operators ask for exactly this, and for any
other endpoint):

* **Identification.**  User-Agent ``kgqa-validator/<version> (<contact>)``; the contact is
  required for ``*.wikidata.org`` (:class:`ConfigurationError` without it), since the query
  service answers 403 to generic clients.
* **One at a time.**  At most ``settings.max_in_flight`` (default 1) requests per endpoint
  host are open at once in this process; others wait their turn.
* **429 Too Many Requests.**  Wait ``Retry-After`` seconds (60 when the header is missing or
  unreadable; an HTTP date is accepted), every thread of this process included, then try
  again; after 3 throttled answers in a row, or when asked to wait more than 300 s, give up
  with :class:`EndpointError`.
* **403 Forbidden.**  Stop: no further request goes to that host from this process, and
  :class:`EndpointBlocked` says why (ignoring a 403 turns a throttle into a long ban).
* **Timeouts are verdicts.**  A 500 whose body names ``TimeoutException`` (the query
  service's 60 s deadline) and no answer within ``settings.timeout_s`` (default 65 s, so the
  server's own deadline fires first) both give ``status="timeout"``; neither is retried,
  since the same query would time out again.
* **Transient failures are retried.**  502, 503, 504 and connection errors: 4 attempts in
  all, waiting ``Retry-After`` when given, else exponential backoff with jitter (about 1, 2,
  4 s: each delay drawn between half and all of ``min(30, 2**(n-1))`` s); then
  :class:`EndpointError`.
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

import email.utils
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kgqa_validator.errors import ConfigurationError, EndpointBlocked, EndpointError
from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.cache import ResultCache
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

__all__ = ["ConnectFailure", "EndpointRegistry", "HttpAnswer", "HttpExecutor", "HttpRequest",
           "ReadTimeout", "RetryPolicy", "Transport", "sparqlwrapper_transport"]

_TIMEOUT_MARKERS = (b"TimeoutException", b"QueryTimeout")


# -- identification ---------------------------------------------------------------------------


def requires_contact(endpoint: str) -> bool:
    """The Wikidata query service blocks clients that do not say who runs them."""
    return answers_label_service(endpoint)


def user_agent(endpoint: str, contact: str | None) -> str:
    """``kgqa-validator/<version> (<contact>)``; raises ConfigurationError when it cannot be."""
    from kgqa_validator import __version__

    product = f"kgqa-validator/{__version__}"
    contact = (contact or "").strip()
    if contact and (not contact.isprintable() or len(contact) > 200):
        raise ConfigurationError("the contact must be one printable line (an e-mail or a URL)")
    if not contact:
        if requires_contact(endpoint):
            raise ConfigurationError(
                f"{endpoint} requires a User-Agent with a contact: give --contact EMAIL_OR_URL "
                "(Settings(contact=...)); the Wikidata query service blocks anonymous clients")
        return product
    return f"{product} ({contact})"


def check_endpoint_url(endpoint: str) -> None:
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"endpoint {endpoint!r} is not an http(s) URL")


# -- the policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (the module docstring states the rules)."""

    attempts: int = 4
    base_s: float = 1.0
    cap_s: float = 30.0
    throttled_answers: int = 3
    default_retry_after_s: float = 60.0
    max_wait_s: float = 300.0

    def backoff(self, failure: int, rng: random.Random) -> float:
        """Delay after the ``failure``-th failure: half to all of min(cap, base * 2**(n-1))."""
        delay = min(self.cap_s, self.base_s * 2 ** (failure - 1))
        return delay / 2 + rng.uniform(0, delay / 2)


def retry_after(headers: Mapping[str, str], wall: float) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # "²" and other non-ASCII digits are no number here
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall)


@dataclass
class EndpointRegistry:
    """Per endpoint host, for the whole process: open-request slots, 403 stops, waits."""

    slots: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def slot(self, host: str, limit: int) -> threading.BoundedSemaphore:
        with self.lock:
            if host not in self.slots:
                self.slots[host] = threading.BoundedSemaphore(max(1, limit))
            return self.slots[host]

    def block(self, host: str, reason: str) -> None:
        with self.lock:
            self.blocked[host] = reason

    def blocked_reason(self, host: str) -> str | None:
        with self.lock:
            return self.blocked.get(host)

    def defer(self, host: str, until: float) -> None:
        with self.lock:
            self.not_before[host] = max(until, self.not_before.get(host, 0.0))

    def wait_until(self, host: str) -> float:
        with self.lock:
            return self.not_before.get(host, 0.0)


REGISTRY = EndpointRegistry()
"""The process-wide registry every executor shares unless given its own (tests)."""


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
