"""``kgqa-validator audit``: readers, reason codes, groups, output files, --execute, resume."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kgqa_validator.audit import readers
from kgqa_validator.audit.groups import compute_groups
from kgqa_validator.audit.readers import FieldMap, detect_format, iter_json_array, read_records
from kgqa_validator.audit.reasons import is_missing, normalise_query
from kgqa_validator.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "audit"
GRAPH = ROOT / "fixtures" / "wikidata_sample.ttl"
LCQUAD_TEST = ROOT.parent / "shared" / "data" / "lcquad2" / "test.json"
if not LCQUAD_TEST.exists():
    LCQUAD_TEST = Path("/work/shared/data/lcquad2/test.json")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def audit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "pairs.jsonl").read_text().splitlines()]


# -- readers ----------------------------------------------------------------------------------


def test_json_array_is_streamed_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(readers, "_CHUNK", 7)  # every value straddles a chunk end
    items = [{"uid": i, "question": "q" * i, "n": 12345.5 + i} for i in range(30)] + [7, "s", None]
    stream = io.StringIO(" \n" + json.dumps(items, indent=2))
    assert list(iter_json_array(stream)) == items
    assert list(iter_json_array(io.StringIO("[]"))) == []
    with pytest.raises(readers.DataFormatError, match="element 2"):
        list(iter_json_array(io.StringIO('[{"a": 1}, {"a": }]')))


def test_formats_are_detected(tmp_path):
    assert detect_format(LCQUAD_TEST) == "lcquad"
    assert detect_format(FIXTURES / "qald_tiny.json") == "qald"
    assert detect_format(FIXTURES / "pairs_tiny.jsonl") == "jsonl"
    assert detect_format(FIXTURES / "pairs_tiny.csv") == "csv"
    lines = tmp_path / "data.json"
    lines.write_text('{"question": "a", "sparql": "ASK {}"}\n{"question": "b", "sparql": "ASK {}"}\n')
    assert detect_format(lines) == "jsonl"


def test_qald_language_answers_and_ids():
    english = list(read_records(FIXTURES / "qald_tiny.json"))
    german = list(read_records(FIXTURES / "qald_tiny.json", fields=FieldMap(lang="de")))
    assert [r.id for r in english] == ["1", "2", "3", "4", "5"]
    assert english[0].question == "What is the capital of France?"
    assert german[0].question == "Was ist die Hauptstadt von Frankreich?"
    assert german[2].question is None  # no German question
    assert english[0].gold == ("http://www.wikidata.org/entity/Q90",)
    assert english[2].gold_boolean is True and english[4].gold is None


def test_jsonl_field_mapping_line_numbers_and_bad_lines():
    fields = FieldMap(question="text", sparql="query")
    records = list(read_records(FIXTURES / "pairs_tiny.jsonl", fields=fields))
    assert [r.id for r in records][:5] == [1, 2, 3, 4, 6]  # line numbers; the blank line 5 skipped
    assert records[3].error.startswith("line 4 is not JSON")
    assert records[9].error and records[9].id == 11  # a JSON array, not an object
    by_id = list(read_records(FIXTURES / "pairs_tiny.jsonl", fields=FieldMap("text", "query", "qid")))
    assert by_id[0].id == "a" and by_id[0].question == "Where was Douglas Adams born?"


def test_csv_rows_start_line_and_empty_cells():
    records = list(read_records(FIXTURES / "pairs_tiny.csv"))
    assert [r.id for r in records] == [2, 3, 5]  # the quoted question spans lines 3-4
    assert records[1].question == "Is Berlin\nin Germany?"
    assert is_missing(records[2].question)


def test_lcquad_records_use_uid_and_paraphrase():
    first = next(read_records(LCQUAD_TEST))
    assert first.id == 5 and first.sparql.startswith("ASK WHERE")
    assert first.paraphrase == "Did Robert Zemeckis direct Forest Gump?"


# -- reasons and groups -----------------------------------------------------------------------


def test_query_normal_form_folds_layout_case_and_variable_names():
    a = normalise_query("SELECT ?obj WHERE { wd:Q1 wdt:P2 ?obj }")
    assert a == normalise_query("select  ?x where {\n wd:Q1 wdt:P2 ?x # comment\n}")
    assert a != normalise_query("SELECT ?obj WHERE { wd:Q1 wdt:P3 ?obj }")
    assert a != normalise_query("SELECT ?obj WHERE { wd:q1 wdt:P2 ?obj }")  # names keep their case


def test_groups_flag_every_member_and_name_the_first():
    fields = FieldMap(question="text", sparql="query", id="qid")
    records = list(read_records(FIXTURES / "pairs_tiny.jsonl", fields=fields))
    groups = compute_groups(records)
    info = {r.id: groups.of(r) for r in records}
    assert info["a"] == {"duplicate_query": {"first": "a", "size": 2}}
    assert info["b"] == info["a"]
    # e and g: the same query (layout/variables aside) and question (case/punctuation aside)
    assert info["e"]["duplicate_pair"] == {"first": "e", "size": 2}
    assert "duplicate_query" not in info["e"]
    assert info["h"]["duplicate_question"] == {"first": "e", "size": 3}


# -- the command ------------------------------------------------------------------------------


def test_audit_jsonl_reasons_and_outputs(capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = audit(capsys, str(FIXTURES / "pairs_tiny.jsonl"), "--out", str(out),
                              "--question-field", "text", "--sparql-field", "query",
                              "--id-field", "qid", "--labels", str(ROOT / "fixtures" / "labels.json"),
                              "--quiet")
    assert code == 1, err
    assert err == ""  # --quiet
    by_id = {r["id"]: r for r in rows(out)}
    assert len(by_id) == 14 and [r["index"] for r in rows(out)] == list(range(14))
    assert by_id["a"]["reasons"] == ["duplicate_query"] and by_id["a"]["score"] > by_id["a"]["threshold"]
    assert "question_missing" in by_id["b"]["reasons"] and by_id["b"]["score"] is None
    assert "question_template" in by_id["c"]["reasons"]
    assert by_id[4]["reasons"] == ["unreadable_record"]  # the line number: no qid to read
    assert {"placeholder_leak", "question_placeholder_leak"} <= set(by_id["d"]["reasons"])
    assert "syntax_error" in by_id["f"]["reasons"]
    # Pelé's coach against Pulp Fiction's cast (verbalised with the labels file)
    assert by_id["l"]["reasons"] == ["low_score"]
    assert by_id["l"]["score"] == min(r["score"] for r in by_id.values() if r["score"] is not None)
    assert "update_operation" in by_id["j"]["reasons"]
    assert "unknown_prefix" in by_id["k"]["reasons"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 14 and summary["flagged"] == sum(bool(r["reasons"]) for r in rows(out))
    assert summary["reasons"]["question_missing"]["count"] == 1
    assert summary["lowest_scored"][0]["id"] == "l"  # the 20 lowest-scored pairs, lowest first
    assert sum(summary["histogram"]["counts"]) == summary["scored"]
    assert "question_missing" in stdout
    page = (out / "report.html").read_text()
    assert "<script src" not in page and "http://" not in page.split("<body>")[0]


def test_audit_refuses_to_overwrite_and_resumes_a_finished_run(capsys, tmp_path):
    args = [str(FIXTURES / "pairs_tiny.csv"), "--out", str(tmp_path), "--no-score", "--quiet"]
    assert audit(capsys, *args)[0] == 1  # x3: no question, and x1's query
    first = (tmp_path / "pairs.jsonl").read_bytes()
    assert [json.loads(line)["reasons"] for line in first.splitlines()] == [
        ["duplicate_query"], [], ["question_missing", "duplicate_query"]]
    code, _, err = audit(capsys, *args)
    assert code == 2 and "--resume" in err and "Traceback" not in err
    assert audit(capsys, *args, "--resume")[0] == 1
    assert (tmp_path / "pairs.jsonl").read_bytes() == first
    code, _, err = audit(capsys, *args, "--resume", "--batch-size", "2")
    assert code == 2 and "batch_size" in err


def test_audit_qald_execute_against_gold_answers(capsys, tmp_path):
    code, _, err = audit(capsys, str(FIXTURES / "qald_tiny.json"), "--out", str(tmp_path),
                         "--execute", "--data", str(GRAPH), "--no-score", "--quiet")
    assert code == 1, err
    by_id = {r["id"]: r for r in rows(tmp_path)}
    # 1 and 2 share a query: France's capital is the right answer for 1 only
    assert by_id["1"]["reasons"] == ["duplicate_query"] and by_id["1"]["answer"]["f1"] == 1.0
    assert "answer_mismatch" in by_id["2"]["reasons"]
    assert by_id["2"]["answer"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert by_id["3"]["reasons"] == [] and by_id["3"]["execution"]["boolean"] is True
    assert {"empty_result", "answer_mismatch"} <= set(by_id["4"]["reasons"])
    assert "unbound_projection" in by_id["5"]["reasons"] and "execution" not in by_id["5"]


def test_audit_bad_input_is_one_line(capsys, tmp_path):
    code, _, err = audit(capsys, str(tmp_path / "missing.json"), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1
    broken = tmp_path / "broken.json"
    broken.write_text('[{"uid": 1, "question": "q", "sparql_wikidata": "ASK {}"}, {"uid": ')
    code, _, err = audit(capsys, str(broken), "--out", str(tmp_path / "o2"), "--no-score", "--quiet")
    assert code == 2 and "element 2" in err and "Traceback" not in err


@pytest.mark.slow
def test_lcquad_test_split_known_defects_are_all_flagged(capsys, tmp_path):
    raw = json.loads(LCQUAD_TEST.read_text())
    code, _, err = audit(capsys, str(LCQUAD_TEST), "--out", str(tmp_path), "--no-score", "--quiet")
    assert code == 1, err
    by_id = {r["id"]: r for r in rows(tmp_path)}
    assert len(by_id) == len(raw) == 6044

    def flagged(predicate, reason: str) -> None:
        expected = {r["uid"] for r in raw if predicate(r)}
        got = {i for i, r in by_id.items() if reason in r["reasons"]}
        assert expected and expected <= got, (reason, len(expected), len(expected - got))

    import re

    flagged(lambda r: r["question"] is None or r["question"].strip().lower() in ("n/a", "none", "na", ""),
            "question_missing")
    flagged(lambda r: re.search(r"\{[^{}]+\}", r["question"] or ""), "question_template")
    flagged(lambda r: re.search(r"\bt\d{8,}\b", r["sparql_wikidata"]), "placeholder_leak")
    flagged(lambda r: re.search(r"\bt\d{8,}\b", r["question"] or ""), "question_placeholder_leak")
    same_query = Counter(r["sparql_wikidata"] for r in raw)
    duplicates = {i for i, r in by_id.items() if {"duplicate_query", "duplicate_pair"} & set(r["reasons"])}
    assert {r["uid"] for r in raw if same_query[r["sparql_wikidata"]] > 1} <= duplicates


def _audit_process(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen([sys.executable, "-m", "kgqa_validator.cli", "audit", *args, "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_half_way_then_resume_gives_the_uninterrupted_pairs(tmp_path):
    sample = tmp_path / "sample.jsonl"
    with sample.open("w") as stream:
        for record in json.loads(LCQUAD_TEST.read_text())[:160]:
            stream.write(json.dumps(record) + "\n")
    common = ["--batch-size", "16", "--workers", "1"]
    whole = _audit_process([str(sample), "--out", str(tmp_path / "whole"), *common])
    killed = _audit_process([str(sample), "--out", str(tmp_path / "cut"), *common])
    pairs = tmp_path / "cut" / "pairs.jsonl"
    deadline = time.monotonic() + 600
    while not (pairs.exists() and pairs.read_bytes().count(b"\n") >= 64):
        assert killed.poll() is None and time.monotonic() < deadline, "audit ended before the kill"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    with pairs.open("ab") as stream:
        stream.write(b'{"id": 1, "index": 12')  # a line cut off mid-write
    cut_lines = pairs.read_bytes().count(b"\n")
    assert 64 <= cut_lines < 160
    resumed = _audit_process([str(sample), "--out", str(tmp_path / "cut"), *common, "--resume"])
    assert resumed.wait(timeout=600) == 1, resumed.stderr.read() if resumed.stderr else ""
    assert whole.wait(timeout=600) == 1
    assert pairs.read_bytes() == (tmp_path / "whole" / "pairs.jsonl").read_bytes()
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["pairs"] == 160 and summary["run"]["pairs_this_run"] == 160 - cut_lines
