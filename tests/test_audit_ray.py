"""``audit --engine ray`` on a local Ray cluster (``ray.init(num_cpus=2)``): the same pairs.jsonl
as the local engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgqa_validator.audit.engine_ray import INSTALL_HINT
from kgqa_validator.cli import main

ROOT = Path(__file__).resolve().parent.parent
LCQUAD_TEST = Path("/work/shared/data/lcquad2/test.json")
if (ROOT.parent / "shared" / "data" / "lcquad2" / "test.json").exists():
    LCQUAD_TEST = ROOT.parent / "shared" / "data" / "lcquad2" / "test.json"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.setenv("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_ray_engine_writes_the_local_engines_bytes(capsys, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(json.loads(LCQUAD_TEST.read_text())[:48]))
    args = ["audit", str(sample), "--batch-size", "16", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 1
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main([*args, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 1
    finally:
        ray.shutdown()
    capsys.readouterr()
    local = (tmp_path / "local" / "pairs.jsonl").read_bytes()
    assert local.count(b"\n") == 48
    assert (tmp_path / "ray" / "pairs.jsonl").read_bytes() == local
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["engine"] == "ray" and summary["scored"]


def test_without_ray_the_engine_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code = main(["audit", str(LCQUAD_TEST), "--out", str(tmp_path), "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and INSTALL_HINT in err and err.count("\n") == 1
    assert not (tmp_path / "pairs.jsonl").exists()
