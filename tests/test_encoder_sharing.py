"""Threads that encode at the same time share model passes (the service's request threads),
and get exactly their own vectors, or the failure, never a hang."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kgqa_validator.errors import KgqaValidatorError
from kgqa_validator.model.encoder import SHIPPED_MODEL, Encoder

QUESTIONS = [f"Who is the author of book number {i}?" for i in range(6)]


def _texts(i: int) -> list[str]:
    return [QUESTIONS[i], f"SELECT ?a WHERE {{ wd:Q{100 + i} wdt:P50 ?a }}",
            "SELECT ?a WHERE { wd:Q42 wdt:P19 ?a }"]  # one text every caller wants


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def _concurrently(encoder: Encoder, count: int) -> list[object]:
    """Start ``count`` callers while the model is busy; they must queue and share one pass."""
    results: list[object] = [None] * count

    def call(i: int) -> None:
        try:
            results[i] = encoder.encode(_texts(i))
        except BaseException as exc:  # handed to the test
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    with encoder._model_lock:  # the model is busy: every caller queues a ticket
        for thread in threads:
            thread.start()
        _wait_for(lambda: len(encoder._pending) == count)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return results


def test_concurrent_callers_share_one_pass_and_get_their_own_vectors() -> None:
    shared = Encoder(precision="fp32")
    shared.encode(["warm up"])
    before = shared.passes
    results = _concurrently(shared, 6)
    assert shared.passes == before + 1  # six callers, one model pass

    alone = Encoder(precision="fp32", cache_size=0)
    for i, got in enumerate(results):
        assert isinstance(got, np.ndarray)
        expected = alone.encode(_texts(i))
        assert got.shape == expected.shape
        assert np.allclose(got, expected, atol=1e-5)


def test_a_lone_caller_does_not_wait_for_company() -> None:
    encoder = Encoder(precision="fp32")
    encoder.encode(["warm up"])
    before = encoder.passes
    encoder.encode(_texts(0))
    encoder.encode(_texts(0))  # cached: no pass at all
    assert encoder.passes == before + 1


def test_a_failing_pass_reaches_every_waiting_caller(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED_MODEL, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    encoder = Encoder(broken, precision="fp32")
    results = _concurrently(encoder, 4)
    assert all(isinstance(r, BaseException) for r in results)
    # The next caller tries again (and fails the same way), it does not hang on a stale ticket.
    with pytest.raises((KgqaValidatorError, OSError, ValueError, RuntimeError)):
        encoder.encode(["again"])
