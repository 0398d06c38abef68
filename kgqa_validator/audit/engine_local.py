"""The local engine: one process, both cores.

Parsing runs in the validator's parser worker processes (one per core) and scoring in torch's
threads; the two overlap: while batch *k* is scored and written on the main thread, batch
*k+1* is parsed and linted on a helper thread (both wait in native code with the GIL
released).  Rows are written in input order and flushed batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

from kgqa_validator.audit.auditor import Auditor, Checked
from kgqa_validator.audit.readers import Record

Sink = Callable[[list[dict[str, Any]]], None]


def batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def run_local(auditor: Auditor, records: Iterable[Record], sink: Sink) -> None:
    """Audit ``records`` in batches of ``auditor.options.batch_size``; ``sink`` gets each
    batch's rows in order."""
    with ThreadPoolExecutor(1, thread_name_prefix="audit-check") as pool:
        pending: tuple[Sequence[Record], Future[Checked | Exception]] | None = None
        for batch in batches(records, auditor.options.batch_size):
            ahead = (batch, pool.submit(auditor.check_safely, batch))
            if pending is not None:
                sink(auditor.finish_safely(pending[0], pending[1].result()))
            pending = ahead
        if pending is not None:
            sink(auditor.finish_safely(pending[0], pending[1].result()))
