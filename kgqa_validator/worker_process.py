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
from multiprocessing.connection import Connection


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
    answers reaches the parent's pipe."""
    inbox, outbox = Connection(os.dup(0)), Connection(os.dup(1))
    sys.stdout = sys.stderr
    return inbox, outbox
