"""``check --jsonl`` / ``rerank --jsonl`` with the audit's field mapping (issue 10, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgqa_validator.cli import main


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.setenv("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "1")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_check_jsonl_maps_fields_and_lints_the_question(capsys, tmp_path):
    source = _write(tmp_path / "in.jsonl", [
        {"uid": 1, "text": "Is Berlin the capital of Germany?",
         "sparql_wikidata": "SELECT ?x WHERE { wd:Q183 wdt:P36 ?x }"},
        {"uid": 2, "text": "What is the {capital} of {Germany}",
         "sparql_wikidata": "SELECT ?x WHERE { wd:Q183 wdt:P36 ?x }"},
        {"uid": 3, "text": "What is the capital of Germany?",
         "sparql_wikidata": "SELECT ?x WHERE { wd:Q183 }"},
    ])
    output = tmp_path / "out.jsonl"
    code = main(["check", "--jsonl", str(source), "-o", str(output), "--question-field", "text",
                 "--sparql-field", "sparql_wikidata", "--quiet"])
    assert code == 1
    assert capsys.readouterr().err == ""
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    codes = [[d["code"] for d in r["diagnostics"]] for r in rows]
    assert codes[0] == ["form_mismatch"]  # a yes/no question, a SELECT query
    assert "question_template" in codes[1] and rows[1]["valid"] is True
    assert rows[2]["valid"] is False and codes[2][0] == "syntax_error"
    assert rows[0]["text"] == rows[0]["question"] and rows[0]["uid"] == 1  # every field kept


def test_check_jsonl_uses_the_question_field_when_present(capsys, tmp_path):
    source = _write(tmp_path / "in.jsonl", [
        {"question": "How many children did Bach have?", "sparql": "SELECT ?c WHERE { wd:Q1339 wdt:P40 ?c }"},
        {"sparql": "SELECT ?c WHERE { wd:Q1339 wdt:P40 ?c }"},
    ])
    output = tmp_path / "out.jsonl"
    assert main(["check", "--jsonl", str(source), "-o", str(output)]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [d["code"] for d in rows[0]["diagnostics"]] == ["form_mismatch"]
    assert rows[1]["diagnostics"] == []


def test_rerank_jsonl_maps_the_candidates_field(capsys, tmp_path):
    source = _write(tmp_path / "in.jsonl", [
        {"q": "Where was Douglas Adams born?", "sparql_wikidata": "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }"},
        {"q": "Where was Douglas Adams born?", "sparql_wikidata": ["SELECT ?p WHERE { wd:Q42 wdt:P19 }"]},
    ])
    output = tmp_path / "out.jsonl"
    code = main(["rerank", "--jsonl", str(source), "-o", str(output), "--block", "scoring",
                 "--question-field", "q", "--sparql-field", "sparql_wikidata", "--quiet"])
    assert code == 1  # the second line's only candidate is invalid
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert rows[0]["ranking"][0]["verdict"] == "accepted" and rows[0]["question"] == rows[0]["q"]
    assert rows[1]["ranking"][0]["valid"] is False
