"""``--resume`` never loses or repeats a finished line, whenever the run is killed.

Each test runs a batch command as a user does, kills it (``kill -9``, or Ctrl-C's SIGINT) at
random moments, start-up of a resumed run included, resumes, and checks after every kill that
the finished lines before it are still there, unchanged, and are a prefix of what an
uninterrupted run writes; the last resume completes and must equal the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV_NAMES = ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
             "KGQA_VALIDATOR_STRICT_PLUGINS")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV_NAMES}


def _complete_lines(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].splitlines(keepends=True)


def _kill_and_resume(args: list[str], output: Path, expected: list[bytes], *, kills: int,
                     window_s: tuple[float, float], sig: int, seed: int) -> list[float]:
    """Kill ``kills`` runs at random moments within ``window_s``; returns the kill times."""
    rng = random.Random(seed)
    command = [sys.executable, "-m", "kgqa_validator.cli", *args, "--output", str(output)]
    times = []
    for attempt in range(kills):
        before = _complete_lines(output)
        resume = ["--resume"] if attempt else []
        process = subprocess.Popen([*command, *resume], env=_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        at = rng.uniform(*window_s)
        times.append(at)
        try:
            process.wait(timeout=at)
        except subprocess.TimeoutExpired:
            process.send_signal(sig)
        # (What parser workers orphaned by kill -9 print is the parsing side's concern.)
        process.communicate(timeout=60)
        after = _complete_lines(output)
        # No finished line lost or changed, none written twice, all in the right order.
        assert after[: len(before)] == before, f"kill {attempt} at {at:.2f}s lost lines"
        assert after == expected[: len(after)], f"kill {attempt} at {at:.2f}s: wrong lines"
        if len(after) == len(expected):
            break
    final = subprocess.run([*command, "--resume"], env=_env(), capture_output=True, timeout=600)
    assert b"Traceback" not in final.stderr
    assert output.read_bytes() == b"".join(expected)
    return times


def _check_input(path: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        sparql = (f"SELECT ?x WHERE {{ wd:Q{i + 1} wdt:P31 ?x }} LIMIT {i % 7 + 1}" if i % 5
                  else f"SELECT ?x WHERE {{ wd:Q{i + 1} wdt:P31 ?x }} LIMT 5")
        rows.append(json.dumps({"id": i, "sparql": sparql}) + "\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def _uninterrupted(args: list[str], reference: Path) -> list[bytes]:
    """The output lines of the same command run once without interruption."""
    subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args, "--output",
                    str(reference)], env=_env(), capture_output=True, timeout=600)
    return reference.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "sigint"])
def test_check_jsonl_resume_survives_kills(tmp_path: Path, sig: int) -> None:
    source = _check_input(tmp_path / "in.jsonl", 4000)
    args = ["check", "--jsonl", str(source), "--no-plugins", "--workers", "2"]
    expected = _uninterrupted(args, tmp_path / "reference.jsonl")
    assert len(expected) == 4000
    _kill_and_resume(args, tmp_path / "out.jsonl", expected, kills=8, window_s=(0.2, 3.0),
                     sig=sig, seed=int(sig))


@pytest.mark.slow
def test_rerank_jsonl_resume_survives_kills(tmp_path: Path) -> None:
    # Every text is different, so each line's embeddings are computed in the same batch
    # whether or not the run was resumed (the scores are then identical to the last bit).
    rows = [json.dumps({"id": i, "question": f"What is the instance of item number {i}?",
                        "candidates": [f"SELECT ?x WHERE {{ wd:Q{i + 1} wdt:P31 ?x }}",
                                       f"SELECT ?x WHERE {{ wd:Q{i + 1} wdt:P279 ?x }}",
                                       f"ASK {{ wd:Q{i + 1} wdt:P31 wd:Q{i + 2} }}"]}) + "\n"
            for i in range(300)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(rows), encoding="utf-8")
    args = ["rerank", "--jsonl", str(source), "--no-plugins", "--precision", "fp32"]
    expected = _uninterrupted(args, tmp_path / "reference.jsonl")
    assert len(expected) == 300
    _kill_and_resume(args, tmp_path / "out.jsonl", expected, kills=5, window_s=(1.0, 9.0),
                     sig=signal.SIGKILL, seed=5)
    # and Ctrl-C: exit 130 with the finished lines kept
    _kill_and_resume(args, tmp_path / "out2.jsonl", expected, kills=3, window_s=(1.0, 9.0),
                     sig=signal.SIGINT, seed=6)


def test_resume_start_up_reads_the_output_and_never_rewrites_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed run only appends: the output is never opened for writing from its start
    (which is what lost 300,000 lines to a kill at 1.2 s), only a trailing partial line is
    cut, and the finished lines' bytes and inode stay as they were."""
    import builtins

    from kgqa_validator import batch_io

    output = tmp_path / "out.jsonl"
    output.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "cut')
    inode = output.stat().st_ino
    modes: list[str] = []
    real_open = builtins.open

    def recording_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(output):
            modes.append(mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    stream, done = batch_io.open_output(str(output), resume=True)
    monkeypatch.undo()
    assert not any("w" in m for m in modes), modes
    with stream:
        assert done == 2
        stream.write('{"a": 3}\n')
    assert output.read_bytes() == b'{"a": 1}\n{"a": 2}\n{"a": 3}\n'
    assert output.stat().st_ino == inode


def test_kill_while_a_large_output_is_resumed_keeps_every_line(tmp_path: Path) -> None:
    """The issue's case: 300,000 finished lines, killed within the resumed run's start-up."""
    total, kept = 300_010, 300_000
    source = tmp_path / "in.jsonl"
    source.write_text('{"sparql": "ASK {}"}\n' * total, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    finished = b"".join(b'{"kept": %d, "valid": true, "pad": "%s"}\n' % (i, b"x" * 40)
                        for i in range(kept))
    output.write_bytes(finished + b'{"cut off')
    command = [sys.executable, "-m", "kgqa_validator.cli", "check", "--jsonl", str(source),
               "--no-plugins", "--workers", "1", "--output", str(output), "--resume"]
    rng = random.Random(8)
    for _ in range(5):
        process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 1.5))
        process.kill()
        process.wait(timeout=60)
        assert output.read_bytes()[: len(finished)] == finished
    done = subprocess.run(command, env=_env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = output.read_bytes().splitlines(keepends=True)
    assert b"".join(lines[:kept]) == finished and len(lines) == total
