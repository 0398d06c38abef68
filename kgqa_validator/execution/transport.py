"""One HTTP exchange with a SPARQL endpoint: SPARQLWrapper builds the request, a bounded
opener sends it and reads the answer.

What the exchange guarantees, whatever the server does:

* **A deadline for the whole exchange.**  ``timeout_s`` covers connecting, sending, the
  headers and the whole body.  A socket timeout alone does not: it bounds each read, so a
  server that sends one byte every half second holds a reader forever.  A watchdog timer
  shuts the connection's socket down when the deadline passes, which ends any blocked read at
  once; the exchange is then a :class:`ReadTimeout`.
* **A size cap for every status.**  At most ``max_bytes`` of any answer are read, 4xx and 5xx
  bodies included (SPARQLWrapper itself reads an error body whole, so its ``query()`` is not
  used: a 500 with a 400 MB chunked body took the process to 2 GB).
* **No redirect to another host.**  A redirect to the same host is followed as urllib does; one
  to another host is not (it would send the query and our User-Agent to a third party): the
  answer is returned as it came, with its ``Location``, and the executor reports it.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kgqa_validator.types import Form

GET_LIMIT = 1500
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpRequest:
    endpoint: str
    query: str
    form: Form
    user_agent: str
    timeout_s: float
    max_bytes: int = MAX_RESPONSE_BYTES

    @property
    def post(self) -> bool:
        return len(urllib.parse.quote(self.query, safe="")) > GET_LIMIT


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP answer; ``complete`` is false when the body was cut (connection lost, too big)."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    complete: bool = True
    too_large: bool = False

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class ConnectFailure(Exception):
    """No answer at all (refused, reset, unreachable): worth another attempt."""


class ReadTimeout(Exception):
    """The endpoint did not answer within the time limit: a verdict on the query."""


Transport = Callable[[HttpRequest], HttpAnswer]


class _Watchdog:
    """Shuts down every socket of one exchange when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def register(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                self._shut(sock)
        return sock

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def cancel(self) -> None:
        self._timer.cancel()


class _OffHostRedirect(Exception):
    def __init__(self, status: int, location: str, headers: Mapping[str, str]) -> None:
        super().__init__(location)
        self.status, self.location, self.headers = status, location, headers


def _watched(base: type[http.client.HTTPConnection], watchdog: _Watchdog) -> Callable[..., Any]:
    def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        conn = base(host, **kwargs)
        create = conn._create_connection  # type: ignore[attr-defined]
        conn._create_connection = (  # type: ignore[attr-defined]
            lambda *a, **k: watchdog.register(create(*a, **k)))
        return conn
    return connection


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    class WatchedHTTP(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_watched(http.client.HTTPConnection, watchdog), req)

    class WatchedHTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_watched(http.client.HTTPSConnection, watchdog), req)

    class SameHostRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                             headers: Any, newurl: str) -> urllib.request.Request | None:
            old = urllib.parse.urlsplit(req.full_url).hostname
            new = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).hostname
            if (old or "").lower() != (new or "").lower():
                raise _OffHostRedirect(code, newurl, _headers(headers))
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(WatchedHTTP, WatchedHTTPS, SameHostRedirects)


def _headers(message: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (message.items() if message is not None else [])}


def _content_length(stream: Any) -> int | None:
    headers = getattr(stream, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _read(stream: Any, request: HttpRequest, watchdog: _Watchdog) -> tuple[bytes, bool, bool]:
    """Body, complete?, too large?  Raises ReadTimeout when the deadline passed."""
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except TimeoutError as exc:
            raise ReadTimeout(f"the answer stalled for {request.timeout_s:g} s") from exc
        except http.client.IncompleteRead as exc:
            if watchdog.fired:
                raise _late(request) from exc
            chunks.append(exc.partial)
            return b"".join(chunks), False, False
        except (ConnectionError, http.client.HTTPException, OSError, ValueError) as exc:
            if watchdog.fired:
                raise _late(request) from exc
            return b"".join(chunks), False, False
        if watchdog.fired:
            raise _late(request)
        if not chunk:
            # read(n) returns b"" at an early end of stream without raising IncompleteRead,
            # so a connection closed mid-answer is only visible against Content-Length.
            declared = _content_length(stream)
            return b"".join(chunks), declared is None or declared == size, False
        chunks.append(chunk)
        size += len(chunk)
        if size > request.max_bytes:
            return b"".join(chunks)[: request.max_bytes], False, True


def _late(request: HttpRequest) -> ReadTimeout:
    return ReadTimeout(f"the exchange took longer than {request.timeout_s:g} s")


def _build_request(request: HttpRequest) -> urllib.request.Request:
    from SPARQLWrapper import GET, JSON, POST, TURTLE, SPARQLWrapper

    wrapper = SPARQLWrapper(request.endpoint, agent=request.user_agent)
    rdf = request.form in (Form.CONSTRUCT, Form.DESCRIBE)
    wrapper.setReturnFormat(TURTLE if rdf else JSON)
    wrapper.setOnlyConneg(True)  # the Accept header only: no format=/output= parameters
    wrapper.setMethod(POST if request.post else GET)
    # Not setQuery(): its query-type regex is cubic on crafted input, and the form is known.
    wrapper.queryString = request.query
    wrapper.queryType = request.form.value.upper()
    # The protocol request (parameters, Accept, User-Agent) as SPARQLWrapper writes it; it is
    # sent by the bounded opener, not by query() (see the module docstring).
    built: urllib.request.Request = wrapper._createRequest()
    return built


def sparqlwrapper_transport(request: HttpRequest) -> HttpAnswer:
    """Send one request and return what came back, whatever the status (see the module
    docstring for the deadline, the size cap and redirects)."""
    built = _build_request(request)
    watchdog = _Watchdog(request.timeout_s)
    try:
        try:
            response = _opener(watchdog).open(built, timeout=request.timeout_s)
        except _OffHostRedirect as redirect:
            headers = {**redirect.headers, "location": redirect.location}
            return HttpAnswer(redirect.status, headers, b"")
        except urllib.error.HTTPError as exc:  # every status but 2xx, bounded like a 200
            if watchdog.fired:
                raise _late(request) from exc
            body, complete, too_large = _read(exc, request, watchdog)
            exc.close()
            return HttpAnswer(exc.code, _headers(exc.headers), body, complete, too_large)
        except urllib.error.URLError as exc:
            if watchdog.fired:
                raise _late(request) from exc
            # Raised while connecting or sending (a connect timeout included): nothing was
            # answered, so another attempt is reasonable.
            raise ConnectFailure(f"cannot connect ({exc.reason})") from exc
        except TimeoutError as exc:
            raise ReadTimeout(f"no answer within {request.timeout_s:g} s") from exc
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            if watchdog.fired:
                raise _late(request) from exc
            raise ConnectFailure(
                f"connection lost before an answer ({type(exc).__name__})") from exc
        with response:
            body, complete, too_large = _read(response, request, watchdog)
        return HttpAnswer(response.status, _headers(response.headers), body, complete, too_large)
    finally:
        watchdog.cancel()
