"""The CLI with execution and labels, end to end against real local servers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURE_GRAPH, Reply, ScriptedServer

from kgqa_validator.cli import main
from kgqa_validator.execution import close_executors

QUESTION = "Who wrote The Hitchhiker's Guide to the Galaxy?"
RIGHT = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"
EMPTY = "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }"
INVALID = "SELECT ?a WHERE { wd:Q25338 wdt:P50 }"
SHIPPED = Path(__file__).resolve().parent.parent / "kgqa_validator" / "model" / "shipped"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("KGQA_VALIDATOR_CONTACT", raising=False)
    yield
    close_executors()


def rerank(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["rerank", "--no-plugins", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_rerank_execute_on_an_endpoint_json(capsys, oxigraph_endpoint, tmp_path):
    code, out, err = rerank(
        capsys, "--block", "scoring", "--execute", "--endpoint", oxigraph_endpoint,
        "--cache-dir", str(tmp_path), "--json", "-q", QUESTION, RIGHT, EMPTY, INVALID)
    assert code == 0, err
    report = json.loads(out)
    by_index = {r["index"]: r for r in report["ranking"]}
    assert by_index[0]["execution"]["status"] == "ok"
    assert by_index[0]["execution"]["rows"] == [{"a": "http://www.wikidata.org/entity/Q42"}]
    assert by_index[0]["execution"]["endpoint"] == oxigraph_endpoint
    assert by_index[1]["execution"]["status"] == "empty"
    assert "empty_result" in [d["code"] for d in by_index[1]["diagnostics"]]
    assert "execution" not in by_index[2]
    assert (tmp_path / "results.sqlite3").is_file()  # --cache-dir is where the cache goes
    assert (tmp_path / "labels.sqlite3").is_file()  # --execute turned endpoint labels on


def test_rerank_execute_embedded_text_report(capsys, tmp_path):
    code, out, err = rerank(
        capsys, "--block", "scoring", "--execute", "--executor", "embedded",
        "--data", str(FIXTURE_GRAPH), "--cache-dir", str(tmp_path), "-q", QUESTION, RIGHT, EMPTY)
    assert code == 0, err
    assert "executed: ok (1)" in out
    assert "a=wd:Q42" in out
    assert "executed: empty (0)" in out
    assert "[empty_result]" in out


def test_rerank_check_ids_reports_unknown_ids(capsys, oxigraph_endpoint, tmp_path):
    bad = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a . ?a wdt:P31 wd:Q987654321 }"
    code, out, _ = rerank(
        capsys, "--block", "scoring", "--check-ids", "--endpoint", oxigraph_endpoint,
        "--cache-dir", str(tmp_path), "--json", "-q", QUESTION, bad, RIGHT)
    assert code == 0  # the right candidate is still accepted
    ranking = json.loads(out)["ranking"]
    flagged = next(r for r in ranking if r["index"] == 0)
    assert flagged["verdict"] == "rejected"
    assert [d["excerpt"] for d in flagged["diagnostics"] if d["code"] == "unknown_id"] == [
        "wd:Q987654321"]
    assert all(r.get("execution") is None for r in ranking)  # --check-ids does not execute


def test_wikidata_without_contact_is_one_line_and_exit_2(capsys):
    # Fails before anything is loaded or sent.
    code, out, err = rerank(capsys, "--block", "scoring", "--execute", "-q", QUESTION, RIGHT)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--contact" in err and "Traceback" not in err


def test_endpoint_labels_flag_needs_a_contact_for_wikidata_too(capsys):
    code, _, err = rerank(capsys, "--block", "scoring", "--endpoint-labels", "-q", QUESTION, RIGHT)
    assert code == 2 and "--contact" in err


def test_a_403_is_one_line_and_exit_2(capsys, scripted_server: ScriptedServer, tmp_path):
    scripted_server.script(Reply(403, b"You are banned", "text/plain"))
    code, out, err = rerank(
        capsys, "--block", "scoring", "--execute", "--endpoint", scripted_server.url,
        "--cache-dir", str(tmp_path), "-q", QUESTION, RIGHT)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "403" in err and "You are banned" in err
    assert len(scripted_server.requests) == 1


def test_endpoint_trouble_per_candidate_is_a_diagnostic_not_an_error(
        capsys, scripted_server, tmp_path):
    scripted_server.script(Reply(200, b"Please set a user-agent", "text/plain"))
    code, out, err = rerank(
        capsys, "--block", "scoring", "--execute", "--endpoint", scripted_server.url,
        "--cache-dir", str(tmp_path), "--json", "-q", "", RIGHT)
    assert code == 1 and err == ""  # decide rejects an unusable answer
    (row,) = json.loads(out)["ranking"]
    assert row["execution"]["status"] == "invalid_response"


@pytest.mark.parametrize("command", ["rerank", "validate"])
def test_contact_goes_into_the_user_agent(command, capsys, scripted_server, tmp_path, monkeypatch):
    from kgqa_validator import __version__

    for how, args in (("option", ["--contact", "me@example.org"]), ("environment", [])):
        if how == "environment":
            monkeypatch.setenv("KGQA_VALIDATOR_CONTACT", "env@example.org")
        scripted_server.requests.clear()
        code = main([command, "--no-plugins", "--block", "scoring", "--execute",
                     "--endpoint", scripted_server.url, "--cache-dir", str(tmp_path / how),
                     *args, "--json", "-q", "", RIGHT])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert json.loads(out)["ranking"][0]["execution"]["status"] == "ok"
        (request,) = scripted_server.requests
        contact = "me@example.org" if how == "option" else "env@example.org"
        assert request.headers["User-Agent"] == f"kgqa-validator/{__version__} ({contact})"


def test_cache_ttl_zero_sends_every_time(capsys, scripted_server, tmp_path):
    for ttl, expected in (("300", 1), ("0", 2)):
        scripted_server.requests.clear()
        for _ in range(2):
            rerank(capsys, "--block", "scoring", "--execute", "--endpoint", scripted_server.url,
                   "--cache-dir", str(tmp_path / ttl), "--cache-ttl", ttl, "-q", "", RIGHT)
        # With a question the labels would be fetched too; with none, only executions count.
        assert len(scripted_server.requests) == expected, ttl


def test_new_builtins_are_listed(capsys):
    assert main(["plugins", "--no-plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert plugins["execute"]["hooks"] == ["kgqa_execute"]
    assert plugins["endpoint_labels"]["hooks"] == ["kgqa_check", "kgqa_resolve_labels"]
    assert plugins["execute"]["origin"] == plugins["endpoint_labels"]["origin"] == "builtin"


def test_bad_endpoint_options_are_usage_errors(capsys, tmp_path):
    for args in (["--executor", "embedded"], ["--endpoint", "ftp://example.org/x", "--execute"],
                 ["--data", str(tmp_path / "missing.ttl"), "--execute"], ["--timeout", "0"]):
        code, _, err = rerank(capsys, "--block", "scoring", *args, "-q", QUESTION, RIGHT)
        assert code == 2 and err.count("\n") == 1, (args, err)


# -- the labels command -----------------------------------------------------------------------


def test_labels_command_from_the_endpoint(capsys, oxigraph_endpoint, tmp_path):
    code = main(["labels", "Q42", "wd:P31", "http://www.wikidata.org/entity/Q5", "Q99999999",
                 "Q1000001", "--endpoint", oxigraph_endpoint, "--cache-dir", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 1  # not every id has a label
    lines = out.splitlines()
    assert lines[0] == "Q42\tDouglas Adams"
    assert lines[1] == "P31\tinstance of\twikibase-item"  # the datatype from the property table
    assert lines[2] == "Q5\thuman"
    assert lines[3].startswith("Q99999999\t-\tunknown to " + oxigraph_endpoint)
    assert lines[4] == "Q1000001\t-\tno English label"


def test_labels_command_json_with_a_file_and_embedded_data(capsys, tmp_path):
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps({"Q42": "DNA"}))
    code = main(["labels", "Q42", "Q145", "--labels", str(labels_file), "--data", str(FIXTURE_GRAPH),
                 "--cache-dir", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["ids"] == [{"id": "Q42", "label": "DNA", "known": True},
                           {"id": "Q145", "label": "United Kingdom", "known": True}]
    assert data["endpoint"] == f"embedded:{FIXTURE_GRAPH}"


def test_labels_command_with_files_only_asks_no_endpoint(capsys, tmp_path):
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps({"Q42": "DNA"}))
    code = main(["labels", "Q42", "Q5", "--labels", str(labels_file), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["endpoint"] is None
    assert data["ids"][1] == {"id": "Q5", "label": None, "known": None}


def test_labels_command_rejects_non_ids(capsys):
    assert main(["labels", "Douglas"]) == 2
    assert "not a Wikidata id" in capsys.readouterr().err


def test_labels_command_second_run_asks_nothing(capsys, scripted_server, tmp_path):
    body = json.dumps({"head": {"vars": ["id", "label"]}, "results": {"bindings": [
        {"id": {"type": "uri", "value": "http://www.wikidata.org/entity/Q42"},
         "label": {"type": "literal", "value": "Douglas Adams"}}]}}).encode()
    scripted_server.script(Reply(200, body))
    for _ in range(2):
        assert main(["labels", "Q42", "--endpoint", scripted_server.url,
                     "--cache-dir", str(tmp_path)]) == 0
        assert capsys.readouterr().out == "Q42\tDouglas Adams\n"
    assert len(scripted_server.requests) == 1


# -- the installed entry point, in its own process ----------------------------------------------


def test_entry_point_rerank_execute(oxigraph_endpoint, tmp_path):
    exe = shutil.which("kgqa-validator") or ""
    command = [exe] if exe else [sys.executable, "-m", "kgqa_validator.cli"]
    env = {k: v for k, v in os.environ.items() if k != "KGQA_VALIDATOR_CONTACT"}
    env["KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [*command, "rerank", "--block", "scoring", "--execute", "--endpoint", oxigraph_endpoint,
         "--cache-dir", str(tmp_path), "--json", "-q", QUESTION, RIGHT, INVALID],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    ranking = json.loads(result.stdout)["ranking"]
    assert ranking[0]["execution"]["rows"] == [{"a": "http://www.wikidata.org/entity/Q42"}]
    assert ranking[1]["verdict"] == "rejected"


def _model_folder() -> Path | None:
    configured = os.environ.get("KGQA_VALIDATOR_TEST_MODEL")
    if configured:
        return Path(configured)
    return SHIPPED if (SHIPPED / "modules.json").is_file() else None


def test_entry_point_rerank_execute_with_the_model(oxigraph_endpoint, tmp_path):
    model = _model_folder()
    if model is None:
        pytest.skip("no model: kgqa_validator/model/shipped has no modules.json and "
                    "KGQA_VALIDATOR_TEST_MODEL is not set")
    result = subprocess.run(
        [sys.executable, "-m", "kgqa_validator.cli", "rerank", "--no-plugins", "--model", str(model),
         "--execute", "--endpoint", oxigraph_endpoint, "--cache-dir", str(tmp_path), "--json",
         "-q", QUESTION, RIGHT, EMPTY, "SELECT ?a WHERE { wd:Q42 wdt:P26 ?a }"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scorer"] is not None
    assert report["ranking"][0]["sparql"] == RIGHT
    assert all(r["score"] is not None for r in report["ranking"])
    executed = [r for r in report["ranking"] if "execution" in r]
    assert executed and all(r["execution"]["endpoint"] == oxigraph_endpoint for r in executed)
