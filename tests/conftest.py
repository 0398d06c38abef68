"""Server fixtures only: real servers on 127.0.0.1, started by the tests.

* ``oxigraph_endpoint``: the ``oxigraph`` server (PyPI) serving fixtures/wikidata_sample.ttl,
  read-only, once per session.
* ``scripted_server``: an http.server in a thread that answers from a script of
  :class:`Reply` values (misbehaviour included) and records every request it receives.
* ``canary``: a scripted server that must never be contacted.
* ``embedded``: the embedded executor over the same fixture graph, per test module (executors
  shared per configuration are closed after each module).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kgqa_validator.execution import close_executors
from kgqa_validator.execution.embedded import EmbeddedExecutor

FIXTURE_GRAPH = Path(__file__).resolve().parent.parent / "fixtures" / "wikidata_sample.ttl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def oxigraph_binary() -> str:
    """The ``oxigraph`` server installed with this interpreter first: a virtual environment's
    bin/ is not on PATH unless activated, and another version may be."""
    binary = shutil.which("oxigraph", path=str(Path(sys.executable).parent)) or shutil.which("oxigraph")
    if binary is None:
        pytest.fail("the oxigraph server is not installed (pip install oxigraph)")
    return binary


@contextlib.contextmanager
def oxigraph_server(location: Path, *, writable: bool = False) -> Iterator[str]:
    """Run the ``oxigraph`` server on ``location`` at 127.0.0.1; yield its query URL (a
    writable one takes updates at the sibling ``/update``)."""
    binary = oxigraph_binary()
    port = free_port()
    process = subprocess.Popen(
        [binary, "serve" if writable else "serve-read-only", "--location", str(location),
         "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/query"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "?query=ASK%7B%7D", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("the oxigraph server did not start")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def oxigraph_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a read-only oxigraph server loaded with the fixture graph."""
    binary = oxigraph_binary()
    location = tmp_path_factory.mktemp("oxigraph") / "db"
    subprocess.run([binary, "load", "--location", str(location), "--file", str(FIXTURE_GRAPH)],
                   check=True, capture_output=True, timeout=120)
    with oxigraph_server(location) as url:
        yield url


@dataclass
class Reply:
    """One scripted answer.  ``content_length`` lies about the body when set (truncation);
    ``delay_s`` stalls before anything is sent."""

    status: int = 200
    body: bytes = b'{"head":{"vars":["x"]},"results":{"bindings":[{"x":{"type":"literal","value":"1"}}]}}'
    content_type: str = "application/sparql-results+json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_length: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request with the next scripted Reply (the last one repeats)."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque([Reply()])
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    server.requests.append(Seen(self.command, self.path, dict(self.headers), body))
                    reply = server.replies.popleft() if len(server.replies) > 1 else server.replies[0]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if reply.delay_s:
                        server.release.wait(reply.delay_s)
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(
                        reply.content_length if reply.content_length is not None else len(reply.body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.content_length is not None:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/sparql"

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies = deque(replies)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def canary() -> Iterator[ScriptedServer]:
    """A server that records any contact; tests assert it saw nothing."""
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module", autouse=True)
def _close_workers() -> Iterator[None]:
    yield
    close_executors()


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedExecutor]:
    executor = EmbeddedExecutor(FIXTURE_GRAPH, timeout_s=20)
    yield executor
    executor.close()
