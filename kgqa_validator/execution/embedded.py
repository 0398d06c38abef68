"""The embedded executor: pyoxigraph over a local RDF file, in a worker process with a time limit.

For private graphs, tests and the offline demo.  The data file is loaded into an in-memory
store by a worker process (``python -m kgqa_validator.execution.embedded``); each query runs
there and the caller waits at most ``timeout_s``, then kills the worker (a thread cannot be
interrupted, and pyoxigraph's planner alone can take seconds on a BGP of a few hundred
patterns).  The next query starts a fresh worker, which reloads the file.

Nothing reaches the network or the file system on a query's behalf: pyoxigraph *does* send
HTTP requests for ``SERVICE <url>`` (when results are iterated; ASK evaluates at once), so
such queries are refused by :mod:`.refusal` before they get here, the worker checks the
tokenizer's facts again before it calls pyoxigraph, and the worker runs under the network
fence (:mod:`kgqa_validator.network_fence`), so even a query both checks missed cannot
connect.  JSON-LD data files are not accepted, since their ``@context`` may name remote
documents.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from kgqa_validator.errors import ConfigurationError, EndpointError
from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.results import make_execution
from kgqa_validator.types import Execution, Form
from kgqa_validator.worker_process import WorkerProcess, child_connections

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 300.0
DATA_FORMATS = {".ttl": "TURTLE", ".nt": "N_TRIPLES", ".nq": "N_QUADS", ".trig": "TRIG",
                ".rdf": "RDF_XML", ".owl": "RDF_XML", ".xml": "RDF_XML", ".n3": "N3"}


def data_format(path: Path) -> str:
    """The pyoxigraph format name for a data file, by extension."""
    name = DATA_FORMATS.get(path.suffix.lower())
    if name is None:
        raise ConfigurationError(
            f"{path}: unsupported RDF file type {path.suffix!r}; use one of "
            + ", ".join(sorted(DATA_FORMATS)))
    return name


# -- the worker process ---------------------------------------------------------------------


def _guard(query: str) -> str | None:
    """Last check before pyoxigraph: the tokenizer must see no SERVICE, FROM or update."""
    from kgqa_validator.execution.refusal import lexical_doubt
    from kgqa_validator.parsing.lexer import QUERY_KEYWORDS, analyse

    facts = analyse(query)
    doubt = lexical_doubt(facts)
    if doubt is not None:
        return doubt
    from kgqa_validator import network_fence

    if not network_fence.fenced() and network_fence.unaccounted_service(query, 0):
        return "SERVICE is never evaluated by the embedded store (and no network fence here)"
    keyword = facts.first_keyword
    if keyword is None or keyword.upper not in QUERY_KEYWORDS:
        return "not a query"
    if facts.services:
        return "SERVICE is never evaluated by the embedded store"
    if facts.datasets:
        return "FROM is never evaluated by the embedded store"
    return None


def _answer(store: Any, query: str, max_rows: int) -> dict[str, Any]:
    import pyoxigraph

    refused = _guard(query)
    if refused is not None:
        return {"status": "refused", "message": refused}
    try:
        result = store.query(query)
        if isinstance(result, pyoxigraph.QueryBoolean):
            return {"status": "ok", "boolean": bool(result)}
        rows: list[dict[str, str]] = []
        count = 0
        if isinstance(result, pyoxigraph.QuerySolutions):
            variables = [v.value for v in result.variables]
            for solution in result:
                if count < max_rows:
                    rows.append({name: solution[name].value for name in variables
                                 if solution[name] is not None})
                count += 1
        else:
            variables = ["subject", "predicate", "object"]
            for triple in result:
                if count < max_rows:
                    rows.append({"subject": triple.subject.value,
                                 "predicate": triple.predicate.value,
                                 "object": triple.object.value})
                count += 1
    except SyntaxError as exc:
        return {"status": "rejected", "message": f"the embedded store rejected the query: {exc}"}
    except (RuntimeError, ValueError, OSError, TypeError) as exc:
        # e.g. "The custom function <...> is not supported": valid SPARQL that this store
        # cannot run, which says nothing against the query (as a 500 from an endpoint).
        return {"status": "error", "message": f"the embedded store cannot run the query: {exc}"}
    return {"status": "ok" if count else "empty", "variables": variables, "rows": rows,
            "row_count": count}


def worker_main() -> None:
    """Entry point of the worker: load the data, then answer queries from stdin on stdout."""
    import pyoxigraph

    inbox, outbox = child_connections()
    options = inbox.recv()
    store = pyoxigraph.Store()
    try:
        store.load(path=options["data_file"], format=getattr(pyoxigraph.RdfFormat, options["format"]))
    except (SyntaxError, OSError, ValueError) as exc:
        outbox.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    outbox.send({"ready": len(store)})
    while True:
        try:
            item = inbox.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if item is None:
            return
        try:
            answer = _answer(store, item["query"], item["max_rows"])
        except BaseException as exc:  # report, never die silently
            answer = {"status": "error", "message": f"{type(exc).__name__}: {str(exc)[:200]}"}
        outbox.send(answer)


# -- the executor -----------------------------------------------------------------------------


class EmbeddedExecutor(Executor):
    """Run queries on a local RDF file (see the module docstring)."""

    answers_label_service = False

    def __init__(self, data_file: Path, *, timeout_s: float = 65.0,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.data_file = Path(data_file)
        if not self.data_file.is_file():
            raise ConfigurationError(f"data file {self.data_file} does not exist")
        self.format = data_format(self.data_file)
        if timeout_s <= 0:
            raise ConfigurationError(f"timeout must be positive, not {timeout_s}")
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.name = f"embedded:{self.data_file}"
        self.triples: int | None = None
        self._worker = WorkerProcess("kgqa_validator.execution.embedded")
        self._lock = threading.Lock()

    def _start(self) -> None:
        inbox, outbox = self._worker.start()
        outbox.send({"data_file": str(self.data_file), "format": self.format})
        try:
            ready = inbox.recv() if inbox.poll(self.startup_timeout_s) else None
        except (EOFError, OSError):
            ready = None
        if not isinstance(ready, dict) or "ready" not in ready:
            self._stop()
            why = ready.get("error") if isinstance(ready, dict) else "the worker did not start"
            raise EndpointError(f"cannot load {self.data_file} into the embedded store: {why}")
        self.triples = int(ready["ready"])
        log.info("embedded store: %s triples from %s", self.triples, self.data_file)

    def _stop(self) -> None:
        self._worker.stop()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def run(self, query: str, form: Form, max_rows: int) -> Execution:
        with self._lock:
            if not self._worker.running:
                self._stop()
                self._start()
            inbox, outbox = self._worker.inbox, self._worker.outbox
            assert inbox is not None and outbox is not None
            started = time.monotonic()
            try:
                outbox.send({"query": query, "max_rows": max_rows})
                if not inbox.poll(self.timeout_s):
                    self._stop()  # the only way to stop pyoxigraph mid-query
                    return make_execution(
                        "timeout", self.name, elapsed_s=time.monotonic() - started,
                        message=f"the query ran longer than {self.timeout_s:g} s in the embedded "
                                "store and was stopped")
                answer: dict[str, Any] = inbox.recv()
            except (EOFError, OSError):
                self._stop()
                return make_execution("error", self.name, elapsed_s=time.monotonic() - started,
                                      message="the embedded store's worker crashed on the query")
        elapsed = time.monotonic() - started
        return make_execution(
            answer["status"], self.name, message=answer.get("message", ""), elapsed_s=elapsed,
            row_count=answer.get("row_count"), boolean=answer.get("boolean"),
            variables=answer.get("variables", ()), rows=answer.get("rows", ()))


if __name__ == "__main__":
    worker_main()
