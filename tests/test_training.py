"""A tiny real training run and evaluation, end to end through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny"
    result = _cli("train", "--data", str(FIXTURES / "lcquad_tiny.json"),
                  "--data", str(FIXTURES / "labelized_tiny.jsonl"),
                  "--labels", str(FIXTURES / "labels.json"),
                  "--output", str(out), "--max-steps", "3", "--batch-size", "4", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained 3 steps" in result.stdout
    return out


def test_train_writes_a_loadable_model_with_a_calibrated_threshold(tiny_model: Path) -> None:
    assert (tiny_model / "modules.json").is_file()
    assert list(tiny_model.glob("*.safetensors"))
    meta = json.loads((tiny_model / "threshold.json").read_text())
    assert meta["recipe"]["name"] == "default"
    assert meta["steps"] == 3
    assert -1.0 <= meta["threshold"] <= 1.0
    assert -1.0 <= meta["threshold_int8"] <= 1.0
    # bf16 shares the fp32 threshold; calibration records how far its cosines moved.
    assert "threshold_bf16" not in meta
    assert 0.0 < meta["calibration_bf16"]["max_cosine_shift"] < 0.05
    assert not (tiny_model / "checkpoint").exists() or (tiny_model / "checkpoint" / "state.json").exists()


def test_evaluate_reports_every_set_and_writes_json_and_card(tiny_model: Path, tmp_path: Path) -> None:
    report, card = tmp_path / "eval.json", tmp_path / "card.md"
    result = _cli("evaluate", "--test", str(FIXTURES / "lcquad_tiny.json"),
                  "--labelized", str(FIXTURES / "labelized_tiny.jsonl"),
                  "--labels", str(FIXTURES / "labels.json"),
                  "--model", str(tiny_model), "--output-json", str(report), "--card", str(card),
                  "--precision", "fp32", "--precision", "bf16", "--consensus-weight", "0.75", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(report.read_text())
    metrics = data["models"][str(tiny_model)]
    assert set(metrics) == {"random", "hard", "hard_decided", "random_verbalised", "hard_verbalised",
                            "labelized_hard"}
    # The same-shaped sets decided by the whole validator, at the weight asked for.
    assert data["consensus_weight"] == 0.75
    decided = metrics["hard_decided"]
    assert decided["sets"] == metrics["hard"]["sets"] and 0.0 <= decided["hits@1"] <= 1.0
    assert 0.0 <= decided["wrong_accepted_same_shape"] <= 1.0
    for name in ("random", "random_verbalised"):
        for key in ("ap", "accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision",
                    "recall", "accuracy_at_stored_threshold"):
            assert 0.0 <= metrics[name][key] <= 1.0 or key.endswith("threshold")
    assert 0.0 <= metrics["hard"]["hits@1"] <= 1.0 and metrics["hard"]["sets"] > 0
    bf16 = data["models"][f"{tiny_model} (bf16)"]
    assert set(bf16) == set(metrics)
    assert abs(bf16["random"]["ap"] - metrics["random"]["ap"]) < 0.05
    assert data["precisions"] == {str(tiny_model): "fp32", f"{tiny_model} (bf16)": "bf16"}
    text = card.read_text()
    assert "hits@1" in text and "stored rejection threshold (bf16)" in text


def test_seed_recipe_is_the_reference_recipe() -> None:
    from kgqa_validator.model.recipes import RECIPES

    seed = RECIPES["seed"]
    assert (seed.loss, seed.batch_size, seed.learning_rate, seed.epochs, seed.seed,
            seed.max_seq_length, seed.pairs) == ("cosine", 16, 5e-5, 1, 42, 256, 12_000)


def test_train_rejects_a_file_that_is_not_a_dataset(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a dataset"')
    result = _cli("train", "--data", str(bad), "--output", str(tmp_path / "m"), "--max-steps", "1")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_generator_stage_trains_with_generator_negatives_and_calibrates_on_them(
        tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = _cli("train", "--recipe", "generator-stage", "--base", str(tiny_model),
                  "--data", str(FIXTURES / "human_tiny.jsonl"), "--data", str(FIXTURES / "lcquad_tiny.json"),
                  "--labels", str(FIXTURES / "labels.json"), "--output", str(out),
                  "--max-steps", "2", "--batch-size", "4", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((out / "threshold.json").read_text())
    assert meta["recipe"]["name"] == "generator-stage" and meta["steps"] == 2
    assert meta["calibration"]["negatives"] == "generator variants + random"
    assert meta["calibration"]["min_recall"] == 0.93
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "float32"  # a plain SentenceTransformer(path) loads it in fp32


def test_chained_recipe_needs_a_data_dir(tmp_path: Path) -> None:
    result = _cli("train", "--recipe", "v2", "--output", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "--data-dir" in result.stderr and "Traceback" not in result.stderr
