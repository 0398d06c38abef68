"""Batch and text output details: record boundaries, bounded standard input, how refused and
executed candidates are shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURE_GRAPH

ENV_NAMES = ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
             "KGQA_VALIDATOR_STRICT_PLUGINS")
VALID = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"


def run(*args: str, stdin: bytes | None = None,
        stdin_path: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    if stdin_path is not None:
        with open(stdin_path, "rb") as source:
            return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args],
                                  stdin=source, capture_output=True, env=env, timeout=120)
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args], input=stdin,
                          capture_output=True, env=env, timeout=120)


def test_a_bare_cr_inside_a_record_does_not_split_it(tmp_path: Path) -> None:
    """Only \\n (or \\r\\n) ends a record: line numbers stay those an editor shows."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"n": 1, "sparql": "SELECT ?x WHERE {\\r ?x wdt:P31 wd:Q5 }"}\r\n'
                       b'{"n": 2, "note": "a\rb", "sparql": "' + VALID.encode() + b'"}\n'
                       b'not json\n'
                       b'{"n": 4, "sparql": "' + VALID.encode() + b'"}\n')
    for how in ("file", "stdin"):
        if how == "file":
            done = run("check", "--no-plugins", "--jsonl", str(source))
        else:
            done = run("check", "--no-plugins", "--jsonl", "-", stdin_path=str(source))
        rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
        assert len(rows) == 4, (how, rows)
        assert [r.get("n") for r in rows] == [1, None, None, 4]
        assert rows[0]["valid"] is True  # the \r is blank inside the query
        # A raw control character is not allowed in a JSON string: one unreadable record,
        # at its own line number, and the next lines keep theirs.
        assert [r.get("line") for r in rows] == [None, 2, 3, None]
        assert all(r["diagnostics"][0]["code"] == "invalid_input" for r in rows[1:3])


def test_check_stdin_is_read_bounded() -> None:
    done = run("check", "-", stdin_path="/dev/zero")
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("kgqa-validator: error: standard input holds more than")


def test_a_valid_query_refused_for_execution_stays_valid_and_says_why(tmp_path: Path) -> None:
    label_service = ('SELECT ?x ?xLabel WHERE { wd:Q42 wdt:P31 ?x SERVICE wikibase:label { '
                     'bd:serviceParam wikibase:language "en" } }')
    args = ("rerank", "--no-plugins", "--block", "scoring", "--execute", "--data",
            str(FIXTURE_GRAPH), "--cache-dir", str(tmp_path), "-q", "What is Douglas Adams?",
            "SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }", label_service)
    done = run(*args)
    text = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    lines = text.splitlines()
    refused = next(i for i, line in enumerate(lines) if "SERVICE wikibase:label" in line
                   and "rejected" in line)
    assert lines[refused].split()[3] == "yes"  # the valid column
    assert "warning [execution_refused]" in lines[refused + 1]
    assert "not executed (refused before any request)" in lines[refused + 2]
    assert "None" not in text
    # Answers from the embedded data are shown with the data's labels.
    assert "x=wd:Q5 (human)" in text
    report = json.loads(run(*args, "--json").stdout)
    by_index = {v["index"]: v for v in report["ranking"]}
    assert by_index[1]["valid"] is True and by_index[1]["verdict"] == "rejected"
    assert by_index[1]["execution"]["status"] == "refused"
