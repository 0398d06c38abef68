"""With no usable endpoint, labels and id checks degrade to notes, as the README promises:
one warning on stderr, ``id_check_skipped`` notes, no exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

from kgqa_validator.builtin import endpoint_labels
from kgqa_validator.builtin.endpoint_labels import lookup
from kgqa_validator.config import Settings
from kgqa_validator.validator import Validator

QUERY = "SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }"


@pytest.fixture(autouse=True)
def _forget_unreachable() -> Iterator[None]:
    endpoint_labels._UNREACHABLE.clear()
    yield
    endpoint_labels._UNREACHABLE.clear()


@pytest.fixture
def nowhere() -> str:
    """An endpoint on a port nothing listens on: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}/sparql"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGQA_VALIDATOR_")}
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_unreachable_endpoint_leaves_ids_unchecked_and_is_asked_once(
        nowhere: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(endpoint=nowhere, check_unknown_ids=True, cache_dir=tmp_path)
    found = lookup(["Q42", "P31"], settings)
    assert found.labels == {} and found.unknown == frozenset()
    assert found.unchecked == {"Q42", "P31"}
    again = lookup(["Q5"], settings)  # not asked again: no second retry sequence
    assert again.unchecked == {"Q5"}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"
                and r.name == endpoint_labels.__name__]
    assert len(warnings) == 1 and "cannot reach" in warnings[0].getMessage()


def test_check_ids_without_network_is_a_note(nowhere: str, tmp_path: Path) -> None:
    settings = Settings(endpoint=nowhere, check_unknown_ids=True, cache_dir=tmp_path)
    validator = Validator(settings, autoload=False, block=["scoring"])
    (assessment,) = validator.check([QUERY])
    assert assessment.valid
    skipped = [d for d in assessment.diagnostics if d.code == "id_check_skipped"]
    assert len(skipped) == 1 and skipped[0].severity.value == "info"
    assert "could not be reached" in skipped[0].message


def test_labels_command_without_network_says_not_checked(nowhere: str, tmp_path: Path) -> None:
    done = cli("labels", "Q42", "--endpoint", nowhere, "--cache-dir", str(tmp_path), "--json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["ids"] == [{"id": "Q42", "label": None, "known": None}]
    (line,) = done.stderr.splitlines()
    assert "cannot reach" in line and "Traceback" not in done.stderr
