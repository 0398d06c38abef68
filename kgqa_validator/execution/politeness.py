"""Politeness towards an endpoint: who we are, how often we retry, and what the whole
process remembers per host.

The rules (for the Wikidata query service, whose operators ask for exactly this, and for any
other endpoint); :class:`~kgqa_validator.execution.http_executor.HttpExecutor` applies them:

* **Identification.**  User-Agent ``kgqa-validator/<version> (<contact>)``; the contact is
  required for ``*.wikidata.org`` (:class:`ConfigurationError` without it), since the query
  service answers 403 to generic clients.
* **One at a time.**  At most ``settings.max_in_flight`` (default 1) requests per endpoint
  host are open at once in this process (:class:`EndpointRegistry`); others wait their turn.
* **429 Too Many Requests.**  Wait ``Retry-After`` seconds (:func:`retry_after`; 60 when the
  header is missing or unreadable; an HTTP date is accepted), every thread of this process
  included, then try again; after 3 throttled answers in a row, or when asked to wait more
  than 300 s, give up with :class:`EndpointError` (:class:`RetryPolicy`).
* **403 Forbidden.**  Stop: no further request goes to that host from this process, and
  :class:`EndpointBlocked` says why (ignoring a 403 turns a throttle into a long ban).
* **Transient failures are retried.**  502, 503, 504 and connection errors: 4 attempts in
  all, waiting ``Retry-After`` when given, else exponential backoff with jitter (about 1, 2,
  4 s: each delay drawn between half and all of ``min(30, 2**(n-1))`` s); then
  :class:`EndpointError`.
"""

from __future__ import annotations

import email.utils
import random
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from kgqa_validator._version import __version__
from kgqa_validator.errors import ConfigurationError
from kgqa_validator.execution.refusal import answers_label_service

# -- identification ---------------------------------------------------------------------------


def requires_contact(endpoint: str) -> bool:
    """The Wikidata query service blocks clients that do not say who runs them."""
    return answers_label_service(endpoint)


def user_agent(endpoint: str, contact: str | None) -> str:
    """``kgqa-validator/<version> (<contact>)``; raises ConfigurationError when it cannot be."""
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
