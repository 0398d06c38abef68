"""The polite HTTP executor against a real, misbehaving HTTP server on 127.0.0.1.

Waits go through an injected sleeper and clock, so the documented waits are asserted
exactly without the tests waiting for them.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import Reply, ScriptedServer, free_port

from kgqa_validator import __version__
from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError, EndpointBlocked, EndpointError
from kgqa_validator.execution import check_settings
from kgqa_validator.execution.http_executor import HttpExecutor
from kgqa_validator.execution.politeness import EndpointRegistry, RetryPolicy
from kgqa_validator.parsing.parse import parse_query
from kgqa_validator.types import Execution, Form

QUERY = "SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }"
JSON = "application/sparql-results+json"


class FakeClock:
    """Monotonic and wall clocks that only move when the executor sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


def make(url: str, tmp_path: Path, clock: FakeClock, *, registry: EndpointRegistry | None = None,
         **options: object) -> HttpExecutor:
    kwargs: dict[str, object] = {"contact": "tests@example.org", "timeout_s": 5.0,
                                 "cache_dir": tmp_path / "cache", "cache_ttl_s": 0.0}
    kwargs.update(options)
    return HttpExecutor(url, registry=registry or EndpointRegistry(), sleep=clock.sleep,
                        clock=clock.monotonic, wall=clock.wall, rng=random.Random(7),
                        **kwargs)  # type: ignore[arg-type]


def run(executor: HttpExecutor, text: str = QUERY, settings: Settings | None = None) -> Execution:
    settings = settings or Settings()
    return executor.execute(text, parse_query(text, settings.prefixes), settings)


def codes(execution: Execution) -> list[str]:
    return [d.code for d in execution.diagnostics]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- 429 -------------------------------------------------------------------------------------


def test_429_with_retry_after_waits_that_long_then_retries(scripted_server, tmp_path, clock):
    scripted_server.script(
        Reply(429, b"Too Many Requests", "text/plain", {"Retry-After": "7"}), Reply())
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "ok" and execution.row_count == 1
    assert clock.sleeps == [7.0]
    assert len(scripted_server.requests) == 2


def test_429_without_retry_after_waits_60_seconds(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(429, b"slow down", "text/plain"), Reply())
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "ok"
    assert clock.sleeps == [60.0]


def test_429_retry_after_as_http_date(scripted_server, tmp_path, clock):
    when = email.utils.formatdate(clock.wall() + 30, usegmt=True)
    scripted_server.script(Reply(429, b"", "text/plain", {"Retry-After": when}), Reply())
    assert run(make(scripted_server.url, tmp_path, clock)).status == "ok"
    assert len(clock.sleeps) == 1 and 29.0 <= clock.sleeps[0] <= 31.0


def test_429_three_times_in_a_row_gives_up(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(429, b"", "text/plain", {"Retry-After": "5"}))
    with pytest.raises(EndpointError, match="429"):
        run(make(scripted_server.url, tmp_path, clock))
    assert len(scripted_server.requests) == 3
    assert clock.sleeps == [5.0, 5.0]


def test_429_asking_for_too_long_a_wait_stops_and_holds_later_requests(
        scripted_server, tmp_path, clock):
    registry = EndpointRegistry()
    scripted_server.script(Reply(429, b"", "text/plain", {"Retry-After": "3600"}), Reply())
    with pytest.raises(EndpointError, match="3600"):
        run(make(scripted_server.url, tmp_path, clock, registry=registry))
    # Another executor on the same host in this process does not send either.
    with pytest.raises(EndpointError, match="wait"):
        run(make(scripted_server.url, tmp_path, clock, registry=registry))
    assert len(scripted_server.requests) == 1
    assert clock.sleeps == []


def test_a_wait_recorded_for_the_host_holds_every_executor(scripted_server, tmp_path, clock):
    registry = EndpointRegistry()
    scripted_server.script(Reply(429, b"", "text/plain", {"Retry-After": "9"}), Reply())
    registry.defer(urllib.parse.urlsplit(scripted_server.url).netloc, clock.monotonic() + 9)
    assert run(make(scripted_server.url, tmp_path, clock, registry=registry)).status == "ok"
    # The registry's wait came first, then the 429's own Retry-After.
    assert clock.sleeps == [9.0, 9.0]


# -- 403 -------------------------------------------------------------------------------------


def test_403_stops_all_traffic_to_the_host_and_says_why(scripted_server, tmp_path, clock):
    registry = EndpointRegistry()
    scripted_server.script(Reply(403, b"<html><title>Forbidden</title></html>", "text/html"), Reply())
    with pytest.raises(EndpointBlocked, match="403") as raised:
        run(make(scripted_server.url, tmp_path, clock, registry=registry))
    assert "User-Agent" in str(raised.value)
    assert len(scripted_server.requests) == 1
    # Same executor, another executor, another path on the same host: nothing is sent.
    other_path = scripted_server.url.replace("/sparql", "/other")
    for executor in (make(scripted_server.url, tmp_path, clock, registry=registry),
                     make(other_path, tmp_path, clock, registry=registry)):
        with pytest.raises(EndpointBlocked):
            run(executor)
        with pytest.raises(EndpointBlocked):
            executor.run(QUERY, Form.SELECT, 10)
    assert len(scripted_server.requests) == 1
    assert clock.sleeps == []


# -- 5xx and connections ---------------------------------------------------------------------


def test_server_side_timeout_is_a_verdict_not_retried(scripted_server, tmp_path, clock):
    body = (b"SPARQL-QUERY: queryStr=SELECT ...\njava.util.concurrent.ExecutionException: "
            b"java.util.concurrent.TimeoutException\n\tat java.util.concurrent.FutureTask.report")
    scripted_server.script(Reply(500, body, "text/plain"), Reply())
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "timeout"
    assert codes(execution) == ["endpoint_timeout"]
    assert "server-side" in execution.diagnostics[0].message
    assert len(scripted_server.requests) == 1 and clock.sleeps == []


def test_other_500_is_an_error_with_the_endpoint_message(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(500, b"java.lang.IllegalStateException: oops\n\tat x", "text/plain"))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "error" and codes(execution) == ["endpoint_error"]
    assert "IllegalStateException: oops" in execution.diagnostics[0].message
    assert len(scripted_server.requests) == 1


def test_503_then_200_retries_after_a_jittered_backoff(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(503, b"busy", "text/plain"), Reply())
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "ok"
    assert len(scripted_server.requests) == 2
    assert len(clock.sleeps) == 1 and 0.5 <= clock.sleeps[0] <= 1.0


def test_503_honours_its_retry_after(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(503, b"busy", "text/plain", {"Retry-After": "3"}), Reply())
    assert run(make(scripted_server.url, tmp_path, clock)).status == "ok"
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_retry_with_exponential_backoff_then_give_up(
        status, scripted_server, tmp_path, clock):
    scripted_server.script(Reply(status, b"<html>bad gateway</html>", "text/html"))
    with pytest.raises(EndpointError, match=str(status)):
        run(make(scripted_server.url, tmp_path, clock))
    assert len(scripted_server.requests) == 4
    bounds = [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)]
    assert len(clock.sleeps) == 3
    assert all(low <= s <= high for s, (low, high) in zip(clock.sleeps, bounds, strict=True))
    assert len(set(clock.sleeps)) == 3  # jittered, and growing
    assert clock.sleeps == sorted(clock.sleeps)


def test_backoff_jitter_stays_within_half_to_full_delay():
    policy, rng = RetryPolicy(), random.Random(1)
    for failure, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 30.0), (12, 30.0)]:
        delays = [policy.backoff(failure, rng) for _ in range(200)]
        assert min(delays) >= cap / 2 and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 4  # actually random


def test_connection_refused_is_retried_then_an_endpoint_error(tmp_path, clock):
    url = f"http://127.0.0.1:{free_port()}/sparql"  # nothing listens there
    with pytest.raises(EndpointError, match="4 attempts"):
        run(make(url, tmp_path, clock))
    assert len(clock.sleeps) == 3


def test_a_stall_longer_than_the_timeout_is_a_timeout_verdict(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(delay_s=20), Reply())
    started = time.monotonic()
    execution = run(make(scripted_server.url, tmp_path, clock, timeout_s=0.4))
    assert time.monotonic() - started < 5
    assert execution.status == "timeout" and codes(execution) == ["endpoint_timeout"]
    assert "client-side" in execution.diagnostics[0].message
    assert len(scripted_server.requests) == 1 and clock.sleeps == []


# -- unreadable 200s ---------------------------------------------------------------------------

TRUNCATED = b'{"head":{"vars":["x"]},"results":{"bindings":[{"x":{"type":"literal","value":"1"}},'


def test_truncated_json_200_is_invalid_response_not_zero_results(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(200, TRUNCATED, JSON))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "invalid_response" and codes(execution) == ["invalid_response"]
    assert execution.row_count is None and execution.rows == ()


def test_truncated_json_with_the_query_services_timeout_trace_says_so(
        scripted_server, tmp_path, clock):
    scripted_server.script(Reply(200, TRUNCATED + b"\njava.util.concurrent.TimeoutException", JSON))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "invalid_response"
    assert "times out" in execution.diagnostics[0].message


def test_connection_closed_mid_body_is_invalid_response(scripted_server, tmp_path, clock):
    body = b'{"head":{"vars":["x"]},"results":{"bindings":[]}}'
    scripted_server.script(Reply(200, body, JSON, content_length=len(body) + 500))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "invalid_response"
    assert "truncated" in execution.diagnostics[0].message
    assert len(scripted_server.requests) == 1


def test_text_plain_200_is_invalid_response(scripted_server, tmp_path, clock):
    page = b"Please set a user-agent and respect our robot policy https://w.wiki/CX6"
    scripted_server.script(Reply(200, page, "text/plain; charset=utf-8"))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "invalid_response"
    assert "text/plain" in execution.diagnostics[0].message
    assert "user-agent" in execution.diagnostics[0].message


@pytest.mark.parametrize("status", [200, 500])
def test_html_error_page_is_invalid_response(status, scripted_server, tmp_path, clock):
    page = b"<!DOCTYPE html><html><head><title>Wikimedia Error</title></head><body>x</body></html>"
    scripted_server.script(Reply(status, page, "text/html"))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "invalid_response"
    assert "Wikimedia Error" in execution.diagnostics[0].message


def test_json_that_is_not_sparql_results_is_invalid_response(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(200, b'{"error": "nope"}', "application/json"))
    assert run(make(scripted_server.url, tmp_path, clock)).status == "invalid_response"


def test_ask_answer_without_boolean_is_invalid_response(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(200, b'{"head":{},"results":{"bindings":[]}}', JSON))
    execution = run(make(scripted_server.url, tmp_path, clock), "ASK { wd:Q42 wdt:P31 wd:Q5 }")
    assert execution.status == "invalid_response"


# -- 4xx ----------------------------------------------------------------------------------------


def test_400_is_rejected_with_the_endpoints_message(scripted_server, tmp_path, clock):
    body = (b"SPARQL-QUERY: queryStr=SELECT\njava.util.concurrent.ExecutionException: "
            b"org.openrdf.query.MalformedQueryException: Encountered \" \"}\" at line 1, column 9.\n"
            b"\tat java.util.concurrent.FutureTask.report(FutureTask.java:122)")
    scripted_server.script(Reply(400, body, "text/plain"))
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "rejected" and codes(execution) == ["endpoint_rejected"]
    assert "Encountered" in execution.diagnostics[0].message
    assert "FutureTask" not in execution.diagnostics[0].message


def test_404_means_a_wrong_endpoint(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(404, b"Not Found", "text/plain"))
    with pytest.raises(EndpointError, match="404"):
        run(make(scripted_server.url, tmp_path, clock))


# -- the request itself -----------------------------------------------------------------------


def test_request_identifies_the_client_and_asks_for_json(scripted_server, tmp_path, clock):
    run(make(scripted_server.url, tmp_path, clock))
    (seen,) = scripted_server.requests
    assert seen.headers["User-Agent"] == f"kgqa-validator/{__version__} (tests@example.org)"
    assert "application/sparql-results+json" in seen.headers["Accept"]
    assert seen.method == "GET"
    sent = urllib.parse.parse_qs(urllib.parse.urlsplit(seen.path).query)["query"][0]
    # The predeclared prefixes the query uses are spelled out for endpoints that lack them.
    assert "PREFIX wd: <http://www.wikidata.org/entity/>" in sent
    assert "PREFIX wdt: <http://www.wikidata.org/prop/direct/>" in sent
    assert sent.rstrip().endswith(QUERY)


def test_long_queries_are_posted(scripted_server, tmp_path, clock):
    ids = " ".join(f"wd:Q{i}" for i in range(1, 400))
    text = f"SELECT ?x WHERE {{ VALUES ?x {{ {ids} }} }}"
    run(make(scripted_server.url, tmp_path, clock), text)
    (seen,) = scripted_server.requests
    assert seen.method == "POST"
    assert urllib.parse.parse_qs(seen.body.decode())["query"][0].endswith(text)


def test_sparqlwrappers_slow_query_type_regex_is_never_reached(scripted_server, tmp_path, clock):
    # SPARQLWrapper.setQuery spends about 10 s in its query-type regex on this 5 KB text.
    crafted = "PREFIX a:" + " PREFIX b: <" * 450 + "\nSELECT * WHERE { ?s ?p ?o }"
    started = time.monotonic()
    execution = make(scripted_server.url, tmp_path, clock).run(crafted, Form.SELECT, 10)
    assert time.monotonic() - started < 3
    assert execution.status == "ok" and len(scripted_server.requests) == 1


def test_a_query_over_the_size_limit_is_refused_without_a_request(scripted_server, tmp_path, clock):
    settings = Settings(max_query_chars=2000)
    text = QUERY + " " * 3000
    executor = make(scripted_server.url, tmp_path, clock)
    execution = executor.execute(text, parse_query(QUERY, settings.prefixes), settings)
    assert execution.status == "refused" and "limit" in execution.diagnostics[0].message
    assert scripted_server.requests == []


def test_rows_are_bounded_by_max_rows_and_counted_in_full(scripted_server, tmp_path, clock):
    bindings = ",".join(f'{{"x":{{"type":"literal","value":"{i}"}}}}' for i in range(50))
    body = ('{"head":{"vars":["x"]},"results":{"bindings":[' + bindings + "]}}").encode()
    scripted_server.script(Reply(200, body, JSON))
    execution = run(make(scripted_server.url, tmp_path, clock), settings=Settings(max_rows=3))
    assert execution.row_count == 50
    assert execution.rows == ({"x": "0"}, {"x": "1"}, {"x": "2"})
    assert execution.variables == ("x",)


# -- contact ------------------------------------------------------------------------------------


def test_wikidata_requires_a_contact():
    with pytest.raises(ConfigurationError, match="--contact"):
        HttpExecutor("https://query.wikidata.org/sparql", registry=EndpointRegistry())
    with pytest.raises(ConfigurationError, match="contact"):
        check_settings(Settings(execute=True))
    check_settings(Settings(execute=True, contact="me@example.org"))  # no request is made


def test_a_contact_cannot_inject_headers():
    with pytest.raises(ConfigurationError, match="one printable line"):
        HttpExecutor("http://127.0.0.1:1/sparql", contact="me\r\nX-Evil: 1",
                     registry=EndpointRegistry())


# -- one request at a time ------------------------------------------------------------------


def _concurrently(executor: HttpExecutor, n: int) -> list[Execution]:
    results: list[Execution] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        execution = run(executor, f"SELECT ?x WHERE {{ wd:Q{i + 1} wdt:P31 ?x }}")
        with lock:
            results.append(execution)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_at_most_one_request_in_flight_per_endpoint(scripted_server: ScriptedServer, tmp_path):
    scripted_server.script(Reply(delay_s=0.15))
    executor = HttpExecutor(scripted_server.url, contact="t@example.org", registry=EndpointRegistry(),
                            cache_dir=tmp_path, cache_ttl_s=0)
    results = _concurrently(executor, 4)
    assert [r.status for r in results] == ["ok"] * 4
    assert len(scripted_server.requests) == 4
    assert scripted_server.max_in_flight == 1


def test_max_in_flight_is_configurable(scripted_server: ScriptedServer, tmp_path):
    scripted_server.script(Reply(delay_s=0.3))
    executor = HttpExecutor(scripted_server.url, contact="t@example.org", registry=EndpointRegistry(),
                            cache_dir=tmp_path, cache_ttl_s=0, max_in_flight=3)
    _concurrently(executor, 3)
    assert scripted_server.max_in_flight >= 2


# -- cache --------------------------------------------------------------------------------------


def test_identical_queries_are_answered_from_the_cache_until_it_expires(
        scripted_server, tmp_path, clock):
    executor = make(scripted_server.url, tmp_path, clock, cache_ttl_s=300.0)
    first = run(executor)
    second = run(make(scripted_server.url, tmp_path, clock, cache_ttl_s=300.0))  # a new process
    assert len(scripted_server.requests) == 1
    assert second.status == first.status == "ok" and second.rows == first.rows
    assert "cached_result" in codes(second) and "cached_result" not in codes(first)
    run(executor, QUERY + " LIMIT 5")  # another text: another request
    assert len(scripted_server.requests) == 2
    clock.now += 301
    run(executor)
    assert len(scripted_server.requests) == 3


def test_unusable_answers_are_not_cached(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(200, b"Please set a user-agent", "text/plain"), Reply())
    executor = make(scripted_server.url, tmp_path, clock, cache_ttl_s=300.0)
    assert run(executor).status == "invalid_response"
    assert run(executor).status == "ok"
    assert len(scripted_server.requests) == 2


def test_cached_verdicts_keep_their_diagnostic(scripted_server, tmp_path, clock):
    scripted_server.script(Reply(400, b"Encountered something odd", "text/plain"))
    executor = make(scripted_server.url, tmp_path, clock, cache_ttl_s=300.0)
    first, second = run(executor), run(executor)
    assert len(scripted_server.requests) == 1
    assert second.status == "rejected"
    assert second.diagnostics[0].message == first.diagnostics[0].message
