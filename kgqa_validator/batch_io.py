"""Files of the batch commands (``check --jsonl``, ``rerank --jsonl``): how they are opened.

What ``--resume`` promises: a finished output line is never at risk.  The output is only ever
appended to; at start-up the one thing removed is a last line without its newline (a line cut
off by the interruption, which is not finished and is written again).  The file is never
rewritten, so a kill at any moment of a resumed run (``kill -9`` included, while it starts up)
leaves every finished line in place.

Every result line is flushed as it is written (one ``write`` per line after the first chunk of
results is ready), so a kill loses only results not yet written: at most the records being
checked together (``check --jsonl`` parses up to 256 at once) or the one being reranked.

Records end at ``\\n`` only (``\\r\\n`` too, its ``\\r`` is blank to JSON): a bare ``\\r``
inside a line, which universal-newline reading would take as a line end, stays in its record,
so line numbers match what ``wc -l`` and an editor show.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import IO

from kgqa_validator.errors import DataFormatError

_SCAN = 1 << 20


def open_input(path: str) -> IO[str]:
    """The batch input, read as UTF-8 with ``\\n`` alone ending a line.

    utf-8-sig: a byte order mark is not part of the first line.  surrogateescape: an
    undecodable byte becomes a character the parser reports (invalid_character), it does not
    stop the run.
    """
    if path == "-":
        reconfigure = getattr(sys.stdin, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(newline="\n")
            except (ValueError, OSError):
                pass  # a replaced stream (tests, embedding) is read as it is
        return sys.stdin
    try:
        return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="\n")
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror}") from exc


def finished_lines(path: str) -> tuple[int, int, int]:
    """``(complete lines, bytes they take, file size)`` of an existing output, read only."""
    done = end = size = 0
    with open(path, "rb") as existing:
        while chunk := existing.read(_SCAN):
            newlines = chunk.count(b"\n")
            if newlines:
                done += newlines
                end = size + chunk.rindex(b"\n") + 1
            size += len(chunk)
    return done, end, size


def open_output(path: str | None, resume: bool) -> tuple[IO[str], int]:
    """Output stream and how many finished lines it already holds (``--resume``).

    With ``resume`` the file is opened for appending after its last complete line; only a
    trailing partial line is cut (see the module docstring).  Without it the file is
    written afresh.
    """
    if path is None or path == "-":
        return sys.stdout, 0
    if not (resume and os.path.exists(path)):
        return open(path, "w", encoding="utf-8", newline="\n"), 0
    try:
        done, end, size = finished_lines(path)
        if end < size:
            with open(path, "r+b") as partial:
                partial.truncate(end)
                partial.flush()
                os.fsync(partial.fileno())
        return open(path, "a", encoding="utf-8", newline="\n"), done
    except OSError as exc:
        raise DataFormatError(f"cannot continue {path}: {exc.strerror}") from exc


def read_bounded(stream: IO[str], limit: int, name: str = "standard input") -> str:
    """All of ``stream`` when it holds at most ``limit`` characters, else a one-line error
    (``check - < /dev/zero`` must not read until memory runs out)."""
    text = stream.read(limit + 1)
    if len(text) > limit:
        raise DataFormatError(f"{name} holds more than {limit:,} characters: that is not one "
                              "query (use --jsonl for many)")
    return text


def bounded_lines(stream: IO[str], limit: int) -> Iterator[str | None]:
    """The stream's lines, ``None`` for a line over ``limit`` characters (its rest is skipped).

    Past four times ``limit`` more characters without a line end the input is not JSON Lines
    at all (``/dev/zero``, a binary file): :class:`DataFormatError` (the lines before it were
    yielded, so their results are kept).
    """
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith("\n"):
            yield line
            continue
        yield None
        skipped = 0
        while not line.endswith("\n"):
            line = stream.readline(_SCAN)
            if not line:
                return
            skipped += len(line)
            if skipped > 4 * limit and not line.endswith("\n"):
                raise DataFormatError(
                    f"no line end within {limit + skipped:,} characters: the input "
                    "is not JSON Lines (the lines before it are done)")
