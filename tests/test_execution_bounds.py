"""The HTTP exchange is bounded in time, size and destination, whatever the server does.

A raw socket server on 127.0.0.1 misbehaves as scripted (drips bytes, sends an endless
chunked body, redirects elsewhere); a canary records any request that reaches it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Reply, ScriptedServer
from test_execution_http import FakeClock, make, run

from kgqa_validator.errors import EndpointBlocked
from kgqa_validator.execution.transport import HttpRequest, sparqlwrapper_transport
from kgqa_validator.types import Form

QUERY = "SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }"
JSON_OK = (b'{"head":{"vars":["x"]},"results":{"bindings":[{"x":{"type":"literal",'
           b'"value":"1"}}]}}')


class RawServer:
    """Runs ``behave(connection)`` for each connection after reading the request head."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.behave = behave
        self.sent = 0
        self.requests = 0
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/sparql"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            self.requests += 1
            try:
                self.behave(conn)
            except OSError:
                pass  # the client hung up: what these tests expect

    def drip(self, conn: socket.socket, data: bytes, every_s: float) -> None:
        for i in range(len(data)):
            if self.stop.is_set():
                return
            conn.sendall(data[i:i + 1])
            self.sent += 1
            time.sleep(every_s)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Callable[[RawServer, socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(behave: Callable[[RawServer, socket.socket], None]) -> RawServer:
        server = RawServer(lambda conn: behave(server, conn))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _request(url: str, timeout_s: float, max_bytes: int = 32 << 20) -> HttpRequest:
    return HttpRequest(url, QUERY, Form.SELECT, "kgqa-validator-tests", timeout_s, max_bytes)


def _head(status: str, extra: str = "", length: int | None = None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/sparql-results+json\r\n"
            f"{size}{extra}\r\n").encode()


@pytest.mark.parametrize("status", ["200 OK", "500 Internal Server Error"])
def test_a_dripped_body_ends_at_the_timeout(raw, tmp_path: Path, status: str) -> None:
    """The issue's case: one byte per 0.5 s took 45 s with --timeout 3 (a 500: 100 s)."""
    body = JSON_OK * 20
    server = raw(lambda s, conn: (conn.sendall(_head(status, length=len(body))),
                                  s.drip(conn, body, 0.5)))
    executor = make(server.url, tmp_path, FakeClock(), timeout_s=2.0)
    started = time.monotonic()
    execution = run(executor)
    elapsed = time.monotonic() - started
    assert execution.status == "timeout"
    assert elapsed < 3.0, elapsed


def test_dripped_headers_end_at_the_timeout(raw, tmp_path: Path) -> None:
    server = raw(lambda s, conn: s.drip(conn, _head("200 OK", length=len(JSON_OK)) + JSON_OK,
                                        0.3))
    started = time.monotonic()
    execution = run(make(server.url, tmp_path, FakeClock(), timeout_s=2.0))
    assert execution.status == "timeout"
    assert time.monotonic() - started < 3.0


def _endless_chunks(server: RawServer, conn: socket.socket) -> None:
    conn.sendall(_head("500 Internal Server Error", "Transfer-Encoding: chunked\r\n"))
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    for _ in range(400 * 16):  # 400 MB if it were all read
        if server.stop.is_set():
            return
        conn.sendall(frame)
        server.sent += len(chunk)


def test_an_error_body_is_capped_like_a_result(raw) -> None:
    """A 500 with a 400 MB chunked body took RSS to 2 GB: the cap applies to every status."""
    server = raw(_endless_chunks)
    answer = sparqlwrapper_transport(_request(server.url, 20.0, max_bytes=1 << 20))
    assert answer.status == 500 and answer.too_large and not answer.complete
    assert len(answer.body) == 1 << 20
    time.sleep(0.2)
    assert server.sent < 64 << 20  # the client stopped reading long before 400 MB


def test_an_endless_500_is_an_endpoint_error_verdict(raw, tmp_path: Path) -> None:
    server = raw(_endless_chunks)
    started = time.monotonic()
    execution = run(make(server.url, tmp_path, FakeClock(), timeout_s=30.0))
    assert execution.status == "error" and [d.code for d in execution.diagnostics] == [
        "endpoint_error"]
    assert time.monotonic() - started < 15


def test_a_redirect_to_another_host_is_not_followed(
        raw, canary: ScriptedServer, tmp_path: Path) -> None:
    elsewhere = canary.url.replace("127.0.0.1", "localhost")
    server = raw(lambda s, conn: conn.sendall(
        f"HTTP/1.1 302 Found\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\n\r\n".encode()))
    execution = run(make(server.url, tmp_path, FakeClock()))
    assert canary.requests == []
    assert execution.status == "error"
    (diagnostic,) = execution.diagnostics
    assert diagnostic.code == "endpoint_error" and elsewhere in diagnostic.message
    assert "not followed" in diagnostic.message


def test_a_redirect_on_the_same_host_is_followed(scripted_server: ScriptedServer,
                                                 tmp_path: Path) -> None:
    target = scripted_server.url.replace("/sparql", "/moved")
    scripted_server.script(Reply(302, b"", "text/plain", {"Location": target}), Reply())
    execution = run(make(scripted_server.url, tmp_path, FakeClock()))
    assert execution.status == "ok"
    assert [r.path.split("?")[0] for r in scripted_server.requests] == ["/sparql", "/moved"]


def test_a_non_ascii_retry_after_is_read_as_missing(scripted_server, tmp_path: Path) -> None:
    clock = FakeClock()
    scripted_server.script(Reply(429, b"slow down", "text/plain", {"Retry-After": "²"}),
                           Reply())
    execution = run(make(scripted_server.url, tmp_path, clock))
    assert execution.status == "ok" and clock.sleeps == [60.0]


def test_a_403_is_reported_once_not_also_logged_as_a_warning(
        scripted_server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scripted_server.script(Reply(403, b"Forbidden", "text/plain"))
    with pytest.raises(EndpointBlocked):
        run(make(scripted_server.url, tmp_path, FakeClock()))
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
