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
from kgqa_validator.cli import jsonl as cli_jsonl

VALID = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"
INVALID = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 } LIMT 5"
ENV_NAMES = ("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "KGQA_VALIDATOR_BLOCK_PLUGINS",
             "KGQA_VALIDATOR_STRICT_PLUGINS")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def run_bytes(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The CLI under a strict UTF-8 locale (as en_US.UTF-8 gives), bytes in and out."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env["PYTHONIOENCODING"] = "utf-8:strict"
    return subprocess.run([sys.executable, "-m", "kgqa_validator.cli", *args], input=stdin,
                          capture_output=True, env=env, timeout=120)


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


@pytest.mark.parametrize("query", [
    'SELECT ?x WHERE { ?x rdfs:label "a\u2028b" . ?x foo:bar ?y }',  # in a string literal
    'SELECT ?x WHERE { ?x rdfs:label "a\x85b" . ?x foo:bar ?y }',
    'SELECT ?x WHERE { ?x rdfs:label "ab"\r. ?x foo:bar ?y }',        # a lone CR: whitespace
])
def test_caret_lines_count_newlines_only(query: str) -> None:
    # Only \n starts a new line for the diagnostics, so the caret line must follow the same
    # rule (str.splitlines would split at each of these).
    (separator,) = [c for c in query if c in "\u2028\x85\r"]
    done = run("check", query)
    lines = done.stdout.splitlines()  # the output itself has no such separators left
    index = next(i for i, line in enumerate(lines) if "[unknown_prefix]" in line)
    column = query.index("foo:bar") + 1
    assert lines[index].startswith(f"query:1:{column}:")
    assert lines[index + 1] == "    " + query.replace(separator, " ")
    assert lines[index + 2] == "    " + " " * (column - 1) + "^"


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
    ("check", "--jsonl", str(Path(__file__).parent)),  # a directory
    ("check", "--no-such-option", VALID),
    ("check", "--timeout-parse", "0", VALID),
    ("check", "--timeout-parse", "nan", VALID),
    ("check", "--jsonl", "-", "--workers", "0"),
    ("check", "--jsonl", "-", "--resume"),  # nothing to continue
    ("check", "--output", "out.jsonl", VALID),  # --output is for --jsonl
    ("rerank", "--no-plugins", "--block", "scoring", "--threshold", "nan", "-q", "Who?", VALID),
    ("rerank", "--no-plugins", "--block", "scoring", "--labels", "/nonexistent/labels.json",
     "-q", "Who?", VALID),
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
    assert done.returncode == 1, done.stderr  # kept line 0 is invalid
    text = output.read_text(encoding="utf-8")
    assert text.startswith("".join(kept))
    rows = read_jsonl(output)
    assert [r["n"] for r in rows] == list(range(6))
    assert [r.get("kept", False) for r in rows] == [True, True, False, False, False, False]
    assert [r["valid"] for r in rows] == [False, True, False, True, False, True]
    # Without --resume the output is written afresh.
    assert run("check", "--jsonl", str(source), "--output", str(output)).returncode == 1
    assert not any(r.get("kept") for r in read_jsonl(output))


@pytest.mark.parametrize("command", ["check", "rerank"])
def test_jsonl_resume_counts_records_not_blank_lines(tmp_path: Path, command: str) -> None:
    rows: list[Any] = [{"n": 1}, "", "   ", {"n": 3}, "", {"n": 4}]
    if command == "check":
        rows = [r if isinstance(r, str) else {**r, "sparql": VALID} for r in rows]
    else:
        rows = [r if isinstance(r, str) else {**r, "question": "Who is human?",
                                              "candidates": [VALID]} for r in rows]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    base = (command, "--jsonl", str(source), "--output", str(output), "--no-plugins")
    run(*base)
    finished = output.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(finished) == 3  # blank lines give no output line
    output.write_text("".join(finished[:2]), encoding="utf-8")  # interrupted after n=3
    run(*base, "--resume")
    assert [r["n"] for r in read_jsonl(output)] == [1, 3, 4]


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


def test_jsonl_output_over_its_own_input_is_refused(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"sparql": VALID}, {"sparql": INVALID}])
    before = source.read_bytes()
    done = run("check", "--jsonl", str(source), "--output", str(source))
    assert done.returncode == 2 and "input file" in done.stderr
    assert source.read_bytes() == before  # the input was not truncated


# -- bytes that are not UTF-8, characters that are not encodable, JSON that is too deep --------


def test_jsonl_with_undecodable_bytes_and_lone_surrogates(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"n": 0, "sparql": VALID}).encode() + b"\n"  # a BOM first
        + b'{"n": 1, "sparql": "SELECT ?x WHERE { ?x ?p \xff }"}\n'            # not UTF-8
        + b'{"n": 2, "sparql": "SELECT ?x WHERE { ?x ?p \\ud800 }"}\n'          # a JSON escape
        + b"[" * 100_000 + b"]" * 100_000 + b"\n"                              # too deep to read
        + b"\x00\x01\x02\xfe garbage\n")
    for output in (None, tmp_path / "out.jsonl"):
        args = ["check", "--jsonl", str(source)] + (["--output", str(output)] if output else [])
        done = run_bytes(*args)
        assert done.returncode == 1, done.stderr
        assert b"Traceback" not in done.stderr
        written = output.read_bytes() if output else done.stdout
        rows = [json.loads(line) for line in written.decode("utf-8").splitlines()]
        assert [r.get("n") for r in rows] == [0, 1, 2, None, None]
        assert rows[0]["valid"] is True
        for row, column in ((rows[1], 25), (rows[2], 25)):
            assert row["valid"] is False
            (error,) = row["diagnostics"]
            assert (error["code"], error["line"], error["column"]) == ("invalid_character", 1, column)
        assert rows[2]["sparql"] == "SELECT ?x WHERE { ?x ?p \ud800 }"  # written back as it came
        assert [r["line"] for r in rows[3:]] == [4, 5]
        assert all(r["diagnostics"][0]["code"] == "invalid_input" for r in rows[3:])
        assert "too deeply" in rows[3]["diagnostics"][0]["message"]


def test_check_reads_undecodable_standard_input() -> None:
    for args in (("check", "-"), ("check", "--json", "-")):
        done = run_bytes(*args, stdin=b"SELECT ?x WHERE { ?x ?p \xff }")
        assert done.returncode == 1, done.stderr
        assert done.stderr == b""
        text = done.stdout.decode("utf-8")  # what was written is UTF-8
        assert "invalid_character" in text
    caret = run_bytes("check", "-", stdin=b"SELECT ?x WHERE { ?x ?p \xff }").stdout.decode()
    lines = caret.splitlines()
    index = next(i for i, line in enumerate(lines) if "[invalid_character]" in line)
    assert lines[index + 2].index("^") == 4 + 24  # one column per undecodable byte


def test_check_query_argument_with_undecodable_bytes() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env["PYTHONIOENCODING"] = "utf-8:strict"
    done = subprocess.run([sys.executable, "-m", "kgqa_validator.cli", "check", "--json",
                           os.fsdecode(b"SELECT ?x WHERE { ?x ?p \xff }")],
                          capture_output=True, env=env, timeout=120)
    assert done.returncode == 1 and done.stderr == b""
    result = json.loads(done.stdout.decode("utf-8"))
    assert [d["code"] for d in result["diagnostics"]] == ["invalid_character"]


# -- --prefix -----------------------------------------------------------------------------------


def test_prefix_option_declares_a_prefix() -> None:
    query = "SELECT ?x WHERE { ?x ex:p ?y }"
    assert "[unknown_prefix]" in run("check", "--mode", "generic", query).stdout
    done = run("check", "--mode", "generic", "--prefix", "ex=<http://example.org/>", query)
    assert done.returncode == 0, done.stdout
    assert run("check", "--prefix", "ex=http://example.org/", query).returncode == 0


# -- rerank --jsonl, without a scorer -------------------------------------------------------------


def test_rerank_jsonl_keeps_fields_and_survives_bad_lines(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "question": "Who?", "candidates": [INVALID, VALID]},
        "not json",
        {"id": "c", "question": "Who?", "candidates": "SELECT ?x WHERE { ?x ?p ?o }"},
        {"id": "d", "question": 7, "candidates": [VALID]},
        {"id": "e", "question": "Who?", "candidates": [INVALID]},
    ])
    output = tmp_path / "out.jsonl"
    done = run("rerank", "--no-plugins", "--block", "scoring", "--jsonl", str(source),
               "--output", str(output))
    assert done.returncode == 1, done.stderr
    rows = read_jsonl(output)
    assert [r.get("id") for r in rows] == ["a", None, "c", "d", "e"]
    assert all(isinstance(r["ranking"], list) for r in rows)
    first = rows[0]
    assert first["candidates"] == [INVALID, VALID]
    assert [(r["index"], r["verdict"]) for r in first["ranking"]] == [(1, "accepted"),
                                                                       (0, "rejected")]
    assert first["ranking"][1]["diagnostics"][0]["code"] == "syntax_error"
    assert first["notes"]  # no scorer: said so
    for row in rows[1:4]:
        assert row["ranking"] == [] and row["diagnostics"][0]["code"] == "invalid_input"
    assert rows[1]["line"] == 2
    assert [r["verdict"] for r in rows[4]["ranking"]] == ["rejected"]
    # Only lines with an accepted candidate: exit 0.
    good = write_jsonl(tmp_path / "good.jsonl", [{"question": "Who?", "candidates": [VALID]}] * 2)
    done = run("rerank", "--no-plugins", "--block", "scoring", "--jsonl", str(good))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2


def test_rerank_jsonl_resume_counts_the_kept_lines(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"n": 0, "question": "Who?", "candidates": [INVALID]}]
                         + [{"n": i, "question": "Who?", "candidates": [VALID]} for i in (1, 2)])
    output = tmp_path / "out.jsonl"
    base = ("rerank", "--no-plugins", "--block", "scoring", "--jsonl", str(source),
            "--output", str(output))
    assert run(*base).returncode == 1
    finished = output.read_text(encoding="utf-8").splitlines(keepends=True)
    output.write_text(finished[0] + finished[1][:10], encoding="utf-8")  # interrupted
    assert run(*base, "--resume").returncode == 1  # the kept line accepted nothing
    assert [r["n"] for r in read_jsonl(output)] == [0, 1, 2]
    output.write_text("", encoding="utf-8")
    source.write_text("".join(json.dumps({"question": "Who?", "candidates": [VALID]}) + "\n"
                              for _ in range(3)), encoding="utf-8")
    assert run(*base).returncode == 0
    output.write_text(output.read_text(encoding="utf-8").splitlines(keepends=True)[0],
                      encoding="utf-8")
    assert run(*base, "--resume").returncode == 0
    assert len(read_jsonl(output)) == 3


def _strict_json(line: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in the output")
    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize("command", ["check", "rerank"])
def test_jsonl_nan_and_infinity_are_input_errors_not_echoed(tmp_path: Path, command: str) -> None:
    fields = '"sparql": "ASK {}"' if command == "check" else '"question": "q", "candidates": ["ASK {}"]'
    source = write_jsonl(tmp_path / "in.jsonl", [
        f'{{{fields}, "weight": NaN}}', f'{{{fields}, "weight": -Infinity}}',
        f'{{{fields}, "weight": 1e999}}', f'{{{fields}, "weight": 1.5}}'])
    result = run(command, "--jsonl", str(source), "--no-plugins")
    rows = [_strict_json(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4
    assert "NaN is not a JSON value" in rows[0]["diagnostics"][0]["message"]
    assert "1e999 is too large" in rows[2]["diagnostics"][0]["message"]
    assert all(r["diagnostics"][0]["code"] == "invalid_input" for r in rows[:3])
    assert rows[3]["weight"] == 1.5 and "line" not in rows[3]


def test_jsonl_line_over_the_limit_is_reported_and_the_next_lines_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_jsonl, "MAX_LINE_CHARS", 1000)
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"sparql": "ASK {}"}, {"sparql": "ASK { " + "?s ?p ?o . " * 250 + "}"}, {"sparql": VALID}])
    assert cli.main(["check", "--jsonl", str(source), "--no-plugins"]) == cli.EXIT_INVALID
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3
    assert rows[0]["valid"] and rows[2]["valid"]
    assert rows[1]["line"] == 2 and "longer than" in rows[1]["diagnostics"][0]["message"]


def test_jsonl_without_line_ends_stops_cleanly_and_keeps_the_finished_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_jsonl, "MAX_LINE_CHARS", 1000)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"sparql": "ASK {}"}) + "\n" + "\0" * 20_000)
    assert cli.main(["check", "--jsonl", str(source), "--no-plugins"]) == cli.EXIT_ERROR
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert rows[0] == {"sparql": "ASK {}", "valid": True, "diagnostics": []}
    assert "not JSON Lines" in captured.err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("command", ["check", "rerank"])
def test_jsonl_from_dev_zero_ends_with_an_error_not_a_hang(command: str) -> None:
    result = run(command, "--jsonl", "/dev/zero", "--no-plugins")
    assert result.returncode == 2
    assert "not JSON Lines" in result.stderr and "Traceback" not in result.stderr
