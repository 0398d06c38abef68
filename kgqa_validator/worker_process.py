"""A child Python process that exchanges pickled messages with its parent over stdin/stdout.

Used by the parser workers and the embedded executor: both run code that a thread cannot
interrupt (rdflib, pyoxigraph's native code), so the only way to stop it is to kill the
process.  The child is started with ``python -m MODULE`` rather than multiprocessing, so the
caller's ``__main__`` is never re-imported (as spawn would do).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from types import TracebackType

from kgqa_validator import network_fence

try:
    _CLOCK_TICKS = float(os.sysconf("SC_CLK_TCK"))
except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
    _CLOCK_TICKS = 100.0


class WorkerProcess:
    """The parent's side: start, talk to (``inbox``/``outbox``), kill."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.process: subprocess.Popen[bytes] | None = None
        self.inbox: Connection | None = None
        self.outbox: Connection | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> tuple[Connection, Connection]:
        """Start the child; returns ``(inbox, outbox)`` as seen from the parent."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.outbox = Connection(os.dup(self.process.stdin.fileno()))
        self.inbox = Connection(os.dup(self.process.stdout.fileno()))
        self.process.stdin.close()
        self.process.stdout.close()
        return self.inbox, self.outbox

    def cpu_seconds(self) -> float | None:
        """CPU time the child has used so far (Linux: /proc), or ``None`` where unknown."""
        if self.process is None:
            return None
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None

    def wait_for_answer(self, timeout_s: float, wall_cap_s: float) -> bool:
        """Whether an answer arrives before the child has spent ``timeout_s`` of CPU time on
        it (at most ``wall_cap_s`` of wall time).  CPU time, so that a busy machine, which
        slows the child down, does not turn a verdict into a time-out; wall time where the
        CPU time cannot be read."""
        assert self.inbox is not None
        start = self.cpu_seconds()
        if start is None:
            return self.inbox.poll(timeout_s)
        deadline = time.monotonic() + wall_cap_s
        while True:
            if self.inbox.poll(min(timeout_s, 0.25)):
                return True
            used = self.cpu_seconds()
            if used is None or used - start >= timeout_s or time.monotonic() >= deadline:
                return self.inbox.poll(0)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
        for connection in (self.inbox, self.outbox):
            if connection is not None:
                connection.close()
        self.process, self.inbox, self.outbox = None, None, None


def child_connections() -> tuple[Connection, Connection]:
    """The child's side: ``(inbox, outbox)``; stdout then goes to stderr, so that nothing but
    answers reaches the parent's pipe.  From here on the child cannot open a network
    connection (:mod:`kgqa_validator.network_fence`), and a parent that goes away or a
    Ctrl-C ends it without a traceback."""
    network_fence.install()
    _quiet_exit()
    inbox, outbox = Connection(os.dup(0)), Connection(os.dup(1))
    sys.stdout = sys.stderr
    return inbox, outbox


def _quiet_exit() -> None:
    """A worker whose parent was interrupted (Ctrl-C reaches the whole process group) or
    killed exits silently: the parent reports what happened, once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException,
             traceback: TracebackType | None) -> None:
        if issubclass(kind, (EOFError, BrokenPipeError, ConnectionError, KeyboardInterrupt)):
            os._exit(0)
        previous(kind, value, traceback)

    sys.excepthook = hook
