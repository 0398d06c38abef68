"""``uvicorn --factory kgqa_validator.service:create_app --workers N``: every worker process
runs with the operator's options from ``KGQA_VALIDATOR_SERVE_ARGS``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from conftest import free_port
from service_process import child_env, running_service

QUESTION = "Who is the author of The Hitchhiker's Guide to the Galaxy?"
GOOD = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"
WRONG = "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }"
LABELS = Path(__file__).resolve().parent.parent / "fixtures" / "labels.json"
UVICORN = [sys.executable, "-m", "uvicorn", "--factory", "kgqa_validator.service:create_app",
           "--host", "127.0.0.1", "--workers", "2"]


def test_every_worker_process_takes_the_operators_options() -> None:
    options = f"--max-candidates 2 --threshold 0.99 --labels '{LABELS}'"
    with running_service(command=UVICORN, env={"KGQA_VALIDATOR_SERVE_ARGS": options},
                         startup_s=240) as url:
        with httpx.Client(base_url=url, timeout=120) as client:
            # Fresh connections, so that the requests spread over both worker processes.
            for _ in range(12):
                too_many = httpx.post(url + "/validate", timeout=120, json={
                    "question": QUESTION, "candidates": [GOOD, WRONG, GOOD]})
                assert too_many.status_code == 422
                assert too_many.json()["error"]["code"] == "too_many_candidates"
                report = httpx.post(url + "/validate", timeout=120, json={
                    "question": QUESTION, "candidates": [GOOD, WRONG]}).json()
                assert [r["verdict"] for r in report["ranking"]] == ["rejected", "rejected"]
            assert client.get("/health").status_code == 200
            # Execution stays off: the options did not allow it.
            refused = client.post("/validate", json={"question": QUESTION, "candidates": [GOOD],
                                                     "options": {"execute": True}})
            assert refused.status_code == 403


def test_a_wrong_option_in_the_environment_is_one_line_and_no_server() -> None:
    env = {**child_env(), "KGQA_VALIDATOR_SERVE_ARGS": "--max-candidates zero"}
    done = subprocess.run([*UVICORN[:-2], "--port", str(free_port())], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "kgqa-validator" in line]
    assert len(lines) == 1 and "KGQA_VALIDATOR_SERVE_ARGS" in lines[0]
    assert "--max-candidates" in lines[0]
    assert "Traceback" not in done.stderr


def test_environment_options_are_checked_like_the_command_line(tmp_path) -> None:
    import pytest

    from kgqa_validator.errors import ConfigurationError
    from kgqa_validator.service.commands import ENV_ARGS, settings_from_environment

    assert settings_from_environment({}) is None
    big = settings_from_environment({ENV_ARGS: "--max-candidates 5000"})
    assert big is not None and big.max_candidates == 5000
    assert big.validator.max_candidates >= 5000  # the validator admits what the service admits
    broken = tmp_path / "labels.json"
    broken.write_text("{not json", encoding="utf-8")
    for value in ("--help", "--max-candidates zero", f"--labels {broken}", "--threshold 'nan"):
        with pytest.raises(ConfigurationError, match=ENV_ARGS):
            settings_from_environment({ENV_ARGS: value})
