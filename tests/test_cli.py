"""The ``kgqa-validator`` command line, run as a user runs it: exit codes, output, stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kgqa_validator import cli
from kgqa_validator.builtin.parse import _POOLS

VALID = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"
INVALID = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 } LIMT 5"
ENV_NAMES = ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
             "KGQA_VALIDATOR_STRICT_PLUGINS")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- check QUERY ----------------------------------------------------------------------------------


def test_check_valid_query_exits_0() -> None:
    done = run("check", VALID)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "valid (select query)"
    assert done.stderr == ""


def test_check_invalid_query_exits_1_with_a_caret() -> None:
    done = run("check", INVALID)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if "[syntax_error]" in line)
    assert lines[head].startswith("query:1:38: error [syntax_error]")
    assert lines[head + 1] == "    " + INVALID
    assert lines[head + 2] == "    " + " " * 37 + "^"
    assert lines[-1] == "invalid (select query)"


def test_check_reads_standard_input() -> None:
    done = run("check", "-", stdin="SELECT ?x\nWHERE { ?x foo:bar ?y }\n")
    assert done.returncode == 1
    assert "query:2:12: error [unknown_prefix]" in done.stdout
    caret = done.stdout.splitlines()
    index = next(i for i, line in enumerate(caret) if "[unknown_prefix]" in line)
    assert caret[index + 1] == "    WHERE { ?x foo:bar ?y }"
    assert caret[index + 2].index("^") == 4 + 11


def test_check_json() -> None:
    done = run("check", "--json", "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 }")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["valid"] is False and result["form"] == "select"
    (diagnostic,) = result["diagnostics"]
    assert {k: diagnostic[k] for k in ("code", "severity", "line", "column", "excerpt")} == {
        "code": "unbound_projection", "severity": "error", "line": 1, "column": 8, "excerpt": "?y"}
    assert diagnostic["message"]


def test_check_with_a_question_reports_form_mismatch() -> None:
    done = run("check", "--question", "Is Berlin a city?", VALID)
    assert done.returncode == 0  # a warning only
    assert "warning [form_mismatch]" in done.stdout


def test_a_ten_megabyte_one_liner_prints_a_short_caret() -> None:
    done = run("check", "-", stdin="SELECT * WHERE { ?s ?p ?o } #" + "x" * 10_000_000)
    assert done.returncode == 1
    assert "[too_large]" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) < 200


# -- usage and infrastructure errors: exit 2, one line on stderr -----------------------------------


@pytest.mark.parametrize("args", [
    (),
    ("frobnicate",),
    ("check",),
    ("check", "--mode", "sparql-2", VALID),
    ("check", "--prefix", "nonsense", VALID),
    ("check", "--jsonl", "/nonexistent/queries.jsonl"),
    ("check", "--no-such-option", VALID),
])
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("kgqa-validator")
    assert "Traceback" not in done.stderr


def test_help_exits_0() -> None:
    done = run("check", "--help")
    assert done.returncode == 0 and "--jsonl" in done.stdout


# -- check --jsonl ---------------------------------------------------------------------------------


def test_jsonl_keeps_every_field_and_survives_bad_lines(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"uid": 1, "question": "Who?", "sparql": VALID, "meta": {"split": "test", "n": None}},
        "this is not json",
        {"uid": 3, "sparql": INVALID},
        '["a", "list"]',
        {"uid": 5, "question": "no query here"},
        {"uid": 6, "sparql": "SELECT ?x WHERE {\n  ?x wdt:P31 ?y .\n  ?x foo:bar ?y }"},
    ])
    output = tmp_path / "out.jsonl"
    done = run("check", "--jsonl", str(source), "--output", str(output))
    assert done.returncode == 1, done.stderr
    rows = read_jsonl(output)
    assert len(rows) == 6
    first = rows[0]
    assert {k: first[k] for k in ("uid", "question", "sparql", "meta")} == {
        "uid": 1, "question": "Who?", "sparql": VALID, "meta": {"split": "test", "n": None}}
    assert first["valid"] is True and first["diagnostics"] == []
    assert rows[1]["valid"] is False and rows[1]["line"] == 2
    assert rows[1]["diagnostics"][0]["code"] == "invalid_input"
    assert rows[2]["uid"] == 3 and rows[2]["valid"] is False
    error = rows[2]["diagnostics"][0]
    assert {k: error[k] for k in ("code", "severity", "line", "column")} == {
        "code": "syntax_error", "severity": "error", "line": 1, "column": 38}
    assert rows[3]["diagnostics"][0]["code"] == "invalid_input"
    assert rows[4]["uid"] == 5 and rows[4]["diagnostics"][0]["code"] == "invalid_input"
    prefix = rows[5]["diagnostics"][0]
    assert (prefix["code"], prefix["line"], prefix["column"]) == ("unknown_prefix", 3, 6)


def test_jsonl_all_valid_exits_0_and_reads_stdin() -> None:
    lines = "".join(json.dumps({"sparql": VALID, "i": i}) + "\n" for i in range(3))
    done = run("check", "--jsonl", "-", stdin=lines)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["i"] for r in rows] == [0, 1, 2] and all(r["valid"] for r in rows)


def test_jsonl_resume_keeps_finished_lines(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"n": i, "sparql": VALID if i % 2 else INVALID}
                                                 for i in range(6)])
    output = tmp_path / "out.jsonl"
    assert run("check", "--jsonl", str(source), "--output", str(output)).returncode == 1
    complete = output.read_text(encoding="utf-8").splitlines(keepends=True)
    # An interrupted run: two finished lines (marked, to see that they are kept as they are)
    # and half of the third.
    kept = [json.dumps({**json.loads(line), "kept": True}) + "\n" for line in complete[:2]]
    output.write_text("".join(kept) + complete[2][:15], encoding="utf-8")
    done = run("check", "--jsonl", str(source), "--output", str(output), "--resume")
    assert done.returncode in (0, 1), done.stderr
    text = output.read_text(encoding="utf-8")
    assert text.startswith("".join(kept))
    rows = read_jsonl(output)
    assert [r["n"] for r in rows] == list(range(6))
    assert [r.get("kept", False) for r in rows] == [True, True, False, False, False, False]
    assert [r["valid"] for r in rows] == [False, True, False, True, False, True]
    # Without --resume the output is written afresh.
    assert run("check", "--jsonl", str(source), "--output", str(output)).returncode == 1
    assert not any(r.get("kept") for r in read_jsonl(output))


def test_jsonl_resume_exit_status_counts_the_kept_lines(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"sparql": INVALID}] + [{"sparql": VALID}] * 3)
    output = tmp_path / "out.jsonl"
    assert run("check", "--jsonl", str(source), "--output", str(output)).returncode == 1
    finished = output.read_text(encoding="utf-8").splitlines(keepends=True)
    output.write_text("".join(finished[:2]), encoding="utf-8")  # the invalid line is kept
    assert run("check", "--jsonl", str(source), "--output", str(output), "--resume").returncode == 1
    output.write_text("".join(finished[1:3]), encoding="utf-8")  # only valid lines kept
    source.write_text("".join(json.dumps({"sparql": VALID}) + "\n" for _ in range(4)))
    assert run("check", "--jsonl", str(source), "--output", str(output), "--resume").returncode == 0
    assert len(read_jsonl(output)) == 4


def test_jsonl_parses_on_every_core(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"sparql": f"SELECT ?x WHERE {{ ?x wdt:P31 wd:Q{i} }}"}
                                                 for i in range(40)])
    output = tmp_path / "out.jsonl"
    before = set(_POOLS)
    assert cli.main(["check", "--jsonl", str(source), "--output", str(output), "--no-plugins"]) == 0
    cores = max(1, os.cpu_count() or 1)
    pools = [pool for key, pool in _POOLS.items() if key not in before or key[-1] == cores]
    assert any(len(pool.workers) == cores
               and all(w.process is not None and w.process.poll() is None for w in pool.workers)
               for pool in pools)
    assert len(read_jsonl(output)) == 40


def test_jsonl_workers_option(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"sparql": VALID}] * 4)
    done = run("check", "--jsonl", str(source), "--workers", "1")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 4
