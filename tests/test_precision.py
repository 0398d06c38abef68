"""Encoder precisions: what ``auto`` picks, and that bf16 and int8 score like fp32 (real model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kgqa_validator import Validator
from kgqa_validator.builtin.scoring import encoder_for
from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError
from kgqa_validator.model.encoder import SHIPPED_MODEL, Encoder
from kgqa_validator.model.precision import cpu_has_native_bf16, resolve
from kgqa_validator.properties import shipped_properties
from kgqa_validator.scoring_text import scoring_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = [json.loads(line) for line in (FIXTURES / "scoring_cases.jsonl").read_text().splitlines()]

ZEN4_FLAGS = "flags\t\t: fpu vme avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE_FLAGS = "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n"
SKYLAKE_FLAGS = "flags\t\t: fpu vme avx2 avx512f avx512bw avx512vl avx512_vnni\n"


@pytest.mark.parametrize(("cpuinfo", "native"), [
    ("processor\t: 0\n" + ZEN4_FLAGS, True),
    (SAPPHIRE_FLAGS, True),
    (SKYLAKE_FLAGS, False),  # AVX-512 without bf16: oneDNN would emulate it, slower than fp32
    ("processor\t: 0\nvendor_id\t: ARM\n", False),  # no flags line at all
    ("", False),
])
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo: str, native: bool) -> None:
    assert cpu_has_native_bf16(cpuinfo) is native


def test_unknown_precision_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="fp16"):
        resolve("fp16")
    with pytest.raises(ConfigurationError):
        Encoder(precision="fp16")
    with pytest.raises(ConfigurationError, match="fp16"):
        Settings(precision="fp16")  # where the setting is made, not at the first score


def test_auto_resolves_to_a_concrete_precision_and_shares_its_encoder() -> None:
    assert resolve("auto") in ("fp32", "bf16")
    assert [resolve(p) for p in ("fp32", "bf16", "int8")] == ["fp32", "bf16", "int8"]
    # One model in memory whether the precision was asked for by name or through auto.
    assert encoder_for(Settings()) is encoder_for(Settings(precision=resolve("auto")))


@pytest.fixture(scope="module")
def encoders() -> dict[str, Encoder]:
    return {p: Encoder(precision=p) for p in ("fp32", "bf16", "int8")}


def _cosines(encoder: Encoder) -> np.ndarray:
    return np.array([v for case in CASES
                     for v in encoder.similarity(case["question"], [case["gold"], *case["distractors"]])])


def test_bf16_cosines_stay_within_hundredths_of_fp32(encoders: dict[str, Encoder]) -> None:
    fp32, bf16 = _cosines(encoders["fp32"]), _cosines(encoders["bf16"])
    assert not np.array_equal(fp32, bf16), "bf16 computed exactly as fp32: autocast is not on"
    assert np.abs(fp32 - bf16).max() < 0.01


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_every_precision_puts_the_gold_query_first(precision: str) -> None:
    validator = Validator(autoload=False, labels_files=(FIXTURES / "labels.json",), precision=precision)
    for case in CASES:
        report = validator.validate(case["question"], [*case["distractors"], case["gold"]])
        assert report.best is not None and report.best.candidate.sparql == case["gold"], case["question"]


def test_bf16_shares_the_fp32_threshold_and_int8_has_its_own(encoders: dict[str, Encoder]) -> None:
    meta = json.loads((SHIPPED_MODEL / "threshold.json").read_text())
    assert encoders["fp32"].threshold == encoders["bf16"].threshold == meta["threshold"]
    assert encoders["int8"].threshold == meta["threshold_int8"]
    # What calibration recorded for bf16 at the shared threshold.
    assert meta["calibration_bf16"]["threshold"] == "fp32"
    assert meta["calibration_bf16"]["max_cosine_shift"] < 0.01


def test_validator_setting_reaches_the_encoder() -> None:
    question, query = "What is the capital of France?", "SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }"
    for precision in ("fp32", "int8"):
        validator = Validator(autoload=False, precision=precision)
        # int8 activations are quantized per batch, so an embedding cached from another batch
        # (an earlier test's) would differ in the second decimal: both sides start empty.
        encoder_for(validator.settings)._cache.clear()
        score = validator.validate(question, [query]).verdicts[0].score
        text = scoring_text(query, shipped_properties().labels())  # what scorers read
        expected = Encoder(precision=precision).similarity(question, [text])[0]
        assert score == pytest.approx(expected, abs=1e-6), precision


def test_cli_precision_choice_and_refusal() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", "rerank", "--no-plugins",
                               "--json", "--question", "What is the capital of France?",
                               "SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }", *args],
                              capture_output=True, text=True, timeout=300)

    ok = cli("--precision", "fp32")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["ranking"][0]["verdict"] == "accepted"
    bad = cli("--precision", "fp16")
    assert bad.returncode == 2
    assert "fp16" in bad.stderr and "Traceback" not in bad.stderr
