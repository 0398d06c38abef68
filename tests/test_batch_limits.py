"""Batch requests of any shape finish: the embedding cache never loses the request's own
vectors, and a request with too many candidates is one ``invalid_input`` line."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kgqa_validator.model.encoder import Encoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lcquad2" / "test.json"
if not DATA.exists():
    DATA = Path("/work/shared/data/lcquad2/test.json")
ENV_NAMES = ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
             "KGQA_VALIDATOR_STRICT_PLUGINS")
VALID = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args],
                          capture_output=True, text=True, env=env, timeout=2400)


def test_a_request_larger_than_the_cache_gets_every_vector() -> None:
    small = Encoder(cache_size=2)
    scores = small.similarity("q", ["a", "b"])
    again = small.similarity("q", ["a", "c", "b", "a"])
    assert len(scores) == 2 and len(again) == 4
    assert again[0] == pytest.approx(scores[0], abs=1e-5) and again[0] == again[3]
    assert again[2] == pytest.approx(scores[1], abs=1e-5)
    assert Encoder(cache_size=0).encode(["x", "y", "x"]).shape[0] == 3


def test_requests_that_recur_and_evict_always_get_their_own_vectors() -> None:
    """Random requests over more texts than the cache holds: each answer matches the
    uncached encoder's (the old cache raised KeyError once it evicted a request's text)."""
    texts = [f"text number {i}" for i in range(60)]
    reference = dict(zip(texts, Encoder(cache_size=100).encode(texts), strict=True))
    small = Encoder(cache_size=8)
    rng = random.Random(3)
    for _ in range(40):
        request = rng.sample(texts, 6) + rng.sample(texts, 2)
        vectors = small.encode(request)
        for text, vector in zip(request, vectors, strict=True):
            assert float(vector @ reference[text]) == pytest.approx(1.0, abs=1e-4)


def test_too_many_candidates_is_an_invalid_input_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"n": 0, "question": "Who?", "candidates": [VALID] * 10_000},
            {"n": 1, "question": "Who is human?", "candidates": [VALID]}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = run("rerank", "--jsonl", str(source), "--no-plugins", "--block", "scoring")
    assert done.returncode == 1, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["ranking"] == [] and first["diagnostics"][0]["code"] == "invalid_input"
    assert "10,000 candidates; at most 1,000" in first["diagnostics"][0]["message"]
    assert second["ranking"][0]["verdict"] == "accepted"
    single = run("rerank", "--no-plugins", "--max-candidates", "2", "-q", "Who?", VALID, VALID,
                 VALID)
    assert single.returncode == 2 and single.stdout == ""
    assert single.stderr.strip().splitlines() == [
        "kgqa-validator: error: rerank: 3 candidates for one question; at most 2 "
        "(--max-candidates)"]


@pytest.mark.slow
def test_rerank_jsonl_2000_lines_of_10_candidates_completes(tmp_path: Path) -> None:
    """The issue's case: LC-QuAD test queries, 10 per line drawn at random (so the default
    4,096-entry cache fills after about 400 lines and then evicts while texts recur); the
    old cache died with KeyError after about 650 lines."""
    records = [r for r in json.loads(DATA.read_text(encoding="utf-8"))
               if isinstance(r.get("sparql_wikidata"), str)
               and isinstance(r.get("question"), str)]
    rng = random.Random(2000)
    lines = []
    for i in range(2000):
        window = [r["sparql_wikidata"] for r in rng.sample(records, 10)]
        lines.append(json.dumps({"n": i, "question": records[i]["question"],
                                 "candidates": window}) + "\n")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(lines), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    done = run("rerank", "--jsonl", str(source), "--output", str(output), "--no-plugins")
    assert "error" not in done.stderr, done.stderr
    assert done.returncode in (0, 1)
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["n"] for r in rows] == list(range(2000))
    assert all(len(r["ranking"]) == 10 for r in rows)


def test_the_python_api_bounds_the_candidates_and_reads_no_further() -> None:
    import itertools

    from kgqa_validator.config import Settings
    from kgqa_validator.errors import InvalidInputError
    from kgqa_validator.validator import Validator

    validator = Validator(Settings(max_candidates=3), autoload=False, block=["scoring"])
    assert len(validator.validate("Who is human?", [VALID] * 3).verdicts) == 3
    with pytest.raises(InvalidInputError, match="more than 3 candidates"):
        validator.validate("Who is human?", [VALID] * 4)
    # An endless generator is refused after the limit, not read forever.
    with pytest.raises(InvalidInputError):
        validator.validate("Who is human?", itertools.repeat(VALID))
