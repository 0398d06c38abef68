"""Parsing in worker processes, so that a parse that runs away is cut off, not waited for.

rdflib can recurse past the interpreter's limit or spend quadratic time on long object
lists; pyoxigraph's query planner (which runs even though nothing is evaluated) takes
seconds on a BGP of a few hundred patterns; and a thread cannot be interrupted.  Each worker
is a separate process that parses one candidate at a time; the caller waits until it has
spent ``timeout_s`` of CPU time on a query (CPU, not wall time, so that a verdict does not
depend on how busy the machine is; wall time is capped at ``WALL_CAP_FACTOR`` times that),
then kills it, starts a fresh one and answers from the linear-time
lexer with a ``parse_timeout`` error.  Several workers parse in parallel, which is what makes
``check --jsonl`` use every core.

A worker is handed a batch of texts at once and answers each as soon as it is parsed, so it
never idles waiting for the caller between two queries (on a busy machine that wait, one
scheduler time slice per query, cost more than the parsing).  The time limit still applies
per query: the caller waits at most ``timeout_s`` (of the worker's CPU time) for each next
answer; when one does not come, the worker is replaced and the rest of its batch goes back to
the queue.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from kgqa_validator.diagnostics import diagnostic
from kgqa_validator.errors import KgqaValidatorError
from kgqa_validator.parsing.parse import PRODUCER, parse_query
from kgqa_validator.types import Form, ParsedQuery, Severity
from kgqa_validator.worker_process import WorkerProcess, child_connections

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0
MAX_BATCH = 32
# The time limit counts the worker's CPU time; on a machine so busy that the worker gets
# less than a share of this, wall time stops it after all.
WALL_CAP_FACTOR = 8


def worker_main() -> None:
    """Entry point of a worker process: parse texts received on stdin, answer on stdout."""

    sys.setrecursionlimit(4000)
    inbox, outbox = child_connections()
    options = inbox.recv()
    # Import and warm both parsers before saying ready, so no time limit pays for start-up.
    parse_query("SELECT * WHERE { ?s ?p ?o }", **options)
    outbox.send("ready")
    while True:
        try:
            batch = inbox.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if batch is None:
            return
        for item in batch:
            try:
                result: Any = parse_query(item, **options)
            except BaseException as exc:  # report, never die silently
                result = exc.__class__.__name__ + ": " + str(exc)[:200]
            outbox.send(result)


class _Worker(WorkerProcess):
    """One parser process; it says "ready" once both parsers are imported and warm."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__("kgqa_validator.parsing.worker")
        self.options = options

    def start(self) -> tuple[Connection, Connection]:
        inbox, outbox = super().start()
        outbox.send(self.options)
        if not inbox.poll(STARTUP_TIMEOUT_S) or inbox.recv() != "ready":
            self.stop()
            raise KgqaValidatorError("the parser worker process did not start")
        return inbox, outbox

    def parse(self, texts: Sequence[str], timeout_s: float) -> list[ParsedQuery | str | None]:
        """Answers for ``texts`` in order: a :class:`ParsedQuery`, an error string, or ``None``
        for a text that took longer than ``timeout_s``.

        The list stops after a timeout or a crash (the worker is then stopped): the caller
        parses the texts without an answer again.
        """
        if not self.running:
            self.stop()
            self.start()
        assert self.inbox is not None and self.outbox is not None
        answers: list[ParsedQuery | str | None] = []
        try:
            self.outbox.send(list(texts))
            for _ in texts:
                if not self.wait_for_answer(timeout_s, WALL_CAP_FACTOR * timeout_s + 5.0):
                    self.stop()
                    answers.append(None)
                    break
                answers.append(self.inbox.recv())
        except (EOFError, OSError):
            self.stop()
            answers.append("worker crashed")
        return answers


RESULT_CACHE = 2048
CACHED_MAX_CHARS = 4000  # with RESULT_CACHE, at most ~8 M characters held
TRANSIENT = frozenset({"parse_timeout", "parse_failed", "lint_skipped"})  # may depend on load


class ParserPool:
    """Parse many candidates on ``workers`` processes with a per-candidate time limit.

    Workers start on first use (a spawn takes about half a second) and live until
    :meth:`close`.  ``workers=0`` parses in the calling process, with no time limit.
    """

    def __init__(self, prefixes: Mapping[str, str], *, wikidata: bool = True,
                 max_chars: int = 100_000, max_depth: int = 64, timeout_s: float = 1.5,
                 workers: int = 1) -> None:
        self.options: dict[str, Any] = {"prefixes": dict(prefixes), "wikidata": wikidata,
                        "max_chars": max_chars, "max_depth": max_depth}
        self.timeout_s = timeout_s
        # Inside a worker rdflib gets half the time limit (SIGPROF, which only a worker's main
        # thread may use): past it the query keeps pyoxigraph's verdict and skips the
        # structural lints, instead of losing the whole parse to the time limit.
        worker_options = {**self.options, "structure_timeout_s": timeout_s / 2}
        self.workers = [_Worker(worker_options) for _ in range(max(0, workers))]
        self._lock = threading.Lock()
        self._results: OrderedDict[str, ParsedQuery] = OrderedDict()
        self._results_lock = threading.Lock()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fallback(self, text: str, why: str | None) -> ParsedQuery:
        if why is not None:
            # The worker died (not a timeout): the strict parser may be what crashed it,
            # so it is not retried in this process.
            return ParsedQuery(text[:200], Form.UNKNOWN, False, (diagnostic(
                "parse_failed", Severity.ERROR, f"the parser failed on this query ({why})",
                producer=PRODUCER),))
        parsed = parse_query(text, strict=False, structure=False, **self.options)
        note = diagnostic(
            "parse_timeout", Severity.ERROR,
            f"parsing took longer than {self.timeout_s:g} s and was stopped: the query could "
            "not be validated", producer=PRODUCER)
        return replace(parsed, diagnostics=(*parsed.diagnostics, note))

    def _drain(self, worker: _Worker, texts: Sequence[str], pending: deque[int],
               pending_lock: threading.Lock, results: list[ParsedQuery | None]) -> None:
        """Feed ``worker`` batches from ``pending`` until it is empty."""
        while True:
            with pending_lock:
                if not pending:
                    return
                # Batches shrink towards the end, so that the workers finish together.
                size = max(1, min(MAX_BATCH, len(pending) // (2 * len(self.workers))))
                batch = [pending.popleft() for _ in range(size)]
            answers = worker.parse([texts[i] for i in batch], self.timeout_s)
            for i, answer in zip(batch, answers, strict=False):
                results[i] = answer if isinstance(answer, ParsedQuery) \
                    else self._fallback(texts[i], answer)
            unanswered = batch[len(answers):]
            if unanswered:
                with pending_lock:
                    pending.extendleft(reversed(unanswered))

    def parse_many(self, texts: Sequence[str]) -> list[ParsedQuery]:
        """Parse ``texts``; results in the same order.

        Recent results are remembered (``RESULT_CACHE`` queries of at most
        ``CACHED_MAX_CHARS``): a reranker sees the same candidates again and again (beams,
        repeated requests to the service, one candidate set scored several ways), and a parse
        costs a round trip to a worker.  A parse that timed out or failed is not remembered:
        it says more about the machine's load at the time than about the query.
        """
        known: dict[int, ParsedQuery] = {}
        with self._results_lock:
            for i, text in enumerate(texts):
                found = self._results.get(text)
                if found is not None:
                    self._results.move_to_end(text)
                    known[i] = found
        if len(known) == len(texts):
            return [known[i] for i in range(len(texts))]
        missing = [i for i in range(len(texts)) if i not in known]
        fresh = self._parse_uncached([texts[i] for i in missing])
        with self._results_lock:
            for i, parsed in zip(missing, fresh, strict=True):
                known[i] = parsed
                text = texts[i]
                if len(text) <= CACHED_MAX_CHARS and not any(
                        d.code in TRANSIENT for d in parsed.diagnostics):
                    self._results[text] = parsed
                    self._results.move_to_end(text)
            while len(self._results) > RESULT_CACHE:
                self._results.popitem(last=False)
        return [known[i] for i in range(len(texts))]

    def _parse_uncached(self, texts: Sequence[str]) -> list[ParsedQuery]:
        if not self.workers:
            return [parse_query(t, **self.options) for t in texts]
        results: list[ParsedQuery | None] = [None] * len(texts)
        pending: deque[int] = deque()
        for i, text in enumerate(texts):
            if len(text) > self.options["max_chars"]:
                results[i] = parse_query(text, **self.options)  # rejected on size, instantly
            else:
                pending.append(i)
        pending_lock = threading.Lock()
        with self._lock:
            if len(self.workers) == 1 or len(pending) <= 1:
                self._drain(self.workers[0], texts, pending, pending_lock, results)
            else:
                threads = [threading.Thread(target=self._drain, daemon=True,
                                            args=(w, texts, pending, pending_lock, results))
                           for w in self.workers]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        return [r if r is not None else self._fallback(texts[i], "no result")
                for i, r in enumerate(results)]
