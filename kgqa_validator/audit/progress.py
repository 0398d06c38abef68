"""A progress bar with rate and ETA on a stream (stderr), for every batch command.

On a terminal it redraws one line at most 5 times a second; elsewhere (a log file, CI) it
writes a plain line at most every 10 seconds, so logs stay short.  ``total`` may be unknown
(standard input): then the count and rate are shown without percentage or ETA.
"""

from __future__ import annotations

import time
from typing import IO


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``update(n)`` as items finish; ``close()`` prints the final line."""

    def __init__(self, stream: IO[str] | None, total: int | None = None, label: str = "",
                 unit: str = "pairs", initial: int = 0) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.unit = unit
        self.done = initial
        self._initial = initial
        self._start = time.monotonic()
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._last = 0.0 if self._tty else self._start

    def rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return (self.done - self._initial) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        parts = [self.label] if self.label else []
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 24)
            parts.append(f"[{bar:<24}] {self.done:,}/{self.total:,} {share:4.0%}")
        else:
            parts.append(f"{self.done:,} {self.unit}")
        parts.append(f"{rate:,.1f} {self.unit}/s")
        if self.total and rate > 0:
            parts.append(f"ETA {_clock((self.total - self.done) / rate)}")
        parts.append(f"elapsed {_clock(time.monotonic() - self._start)}")
        return " ".join(parts)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self._last < (0.2 if self._tty else 10.0):
            return
        self._last = now
        self._write()

    def _write(self, end: str = "") -> None:
        assert self.stream is not None
        if self._tty:
            self.stream.write("\r\x1b[K" + self.line() + end)
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self._write("\n")
