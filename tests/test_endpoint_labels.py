"""The endpoint label source and the unknown_id check, on real servers."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FIXTURE_GRAPH, Reply, ScriptedServer

from kgqa_validator.builtin.endpoint_labels import active, label_query, lookup
from kgqa_validator.config import Settings
from kgqa_validator.execution import close_executors
from kgqa_validator.types import Mode, Severity
from kgqa_validator.validator import Validator


@pytest.fixture(scope="module", autouse=True)
def _close_workers() -> Iterator[None]:
    yield
    close_executors()


@pytest.fixture(params=["http", "embedded"])
def settings(request, oxigraph_endpoint, tmp_path) -> Settings:
    if request.param == "http":
        return Settings(endpoint=oxigraph_endpoint, endpoint_labels=True, cache_dir=tmp_path)
    return Settings(data_file=FIXTURE_GRAPH, endpoint_labels=True, cache_dir=tmp_path)


def label_answer(labels: dict[str, str | None]) -> bytes:
    rows = []
    for id_, label in labels.items():
        row: dict[str, object] = {"id": {"type": "uri", "value": f"http://www.wikidata.org/entity/{id_}"}}
        if label is not None:
            row["label"] = {"type": "literal", "value": label, "xml:lang": "en"}
        rows.append(row)
    return json.dumps({"head": {"vars": ["id", "label"]}, "results": {"bindings": rows}}).encode()


def sent_query(request) -> str:
    if request.method == "POST":
        return urllib.parse.parse_qs(request.body.decode())["query"][0]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)["query"][0]


# -- lookups on the fixture graph ---------------------------------------------------------------


def test_labels_and_unknown_ids(settings):
    found = lookup(["Q42", "P31", "Q25338", "Q1000001", "Q1000002", "Q99999999", "P99999"], settings)
    assert found.labels == {"Q42": "Douglas Adams", "P31": "instance of",
                            "Q25338": "The Hitchhiker's Guide to the Galaxy"}
    # Q1000001 exists without an English label; Q1000002 is a redirect: both are known.
    assert found.unknown == {"Q99999999", "P99999"}
    assert found.unchecked == frozenset()


def test_english_labels_only(settings):
    assert lookup(["Q183"], settings).labels == {"Q183": "Germany"}


def test_ids_of_another_shape_are_ignored(settings):
    found = lookup(["Q42", "q42", "Q0", "X1", "Q42 ", "wd:Q42"], settings)
    assert found.labels == {"Q42": "Douglas Adams"} and found.unknown == frozenset()


def test_validator_labels_merge_files_first(settings, tmp_path):
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps({"Q42": "DNA (from the file)"}))
    validator = Validator(settings, autoload=False, block=["scoring"],
                          labels_files=(labels_file,))
    assert validator.labels(["Q42", "Q5"]) == {"Q42": "DNA (from the file)", "Q5": "human"}


# -- batching and cache, counted on a scripted server ------------------------------------------


def test_one_batched_request_then_none(scripted_server: ScriptedServer, tmp_path):
    scripted_server.script(Reply(200, label_answer({"Q42": "Douglas Adams", "Q5": "human",
                                                    "Q1000001": None})))
    settings = Settings(endpoint=scripted_server.url, endpoint_labels=True, cache_dir=tmp_path)
    ids = ["Q42", "Q5", "Q1000001", "Q31415926"]
    first = lookup(ids, settings)
    assert len(scripted_server.requests) == 1
    query = sent_query(scripted_server.requests[0])
    assert "VALUES ?id" in query and all(f"entity/{i}>" in query for i in ids)
    second = lookup(ids, Settings(endpoint=scripted_server.url, endpoint_labels=True,
                                  cache_dir=tmp_path))
    assert len(scripted_server.requests) == 1  # everything, unknown ids included, was cached
    assert first == second
    assert second.labels == {"Q42": "Douglas Adams", "Q5": "human"}
    assert second.unknown == {"Q31415926"}


def test_only_missing_ids_are_asked_for(scripted_server, tmp_path):
    settings = Settings(endpoint=scripted_server.url, endpoint_labels=True, cache_dir=tmp_path)
    scripted_server.script(Reply(200, label_answer({"Q42": "Douglas Adams"})))
    lookup(["Q42"], settings)
    scripted_server.script(Reply(200, label_answer({"Q5": "human"})))
    assert lookup(["Q42", "Q5"], settings).labels == {"Q42": "Douglas Adams", "Q5": "human"}
    assert len(scripted_server.requests) == 2
    second = sent_query(scripted_server.requests[1])
    assert "entity/Q5>" in second and "entity/Q42>" not in second


def test_many_ids_are_sent_in_batches_of_200(scripted_server, tmp_path):
    scripted_server.script(Reply(200, label_answer({})))
    settings = Settings(endpoint=scripted_server.url, endpoint_labels=True, cache_dir=tmp_path)
    found = lookup([f"Q{i}" for i in range(1, 451)], settings)
    assert len(scripted_server.requests) == 3
    assert len(found.unknown) == 450


def test_a_failed_lookup_judges_nothing_and_is_not_cached(scripted_server, tmp_path):
    scripted_server.script(Reply(200, b"Please set a user-agent", "text/plain"),
                           Reply(200, label_answer({"Q42": "Douglas Adams"})))
    settings = Settings(endpoint=scripted_server.url, check_unknown_ids=True, cache_dir=tmp_path)
    failed = lookup(["Q42", "Q7"], settings)
    assert failed.labels == {} and failed.unknown == frozenset()
    assert failed.unchecked == {"Q42", "Q7"}
    again = lookup(["Q42", "Q7"], settings)
    assert len(scripted_server.requests) == 2
    assert again.labels == {"Q42": "Douglas Adams"} and again.unknown == {"Q7"}


def test_the_label_query_is_plain_sparql(tmp_path):
    import pyoxigraph

    query = label_query(["Q42", "P31"], "http://www.wikidata.org/entity/")
    store = pyoxigraph.Store()
    store.load(path=str(FIXTURE_GRAPH))
    rows = {s["id"].value: s["label"].value for s in store.query(query)}
    assert rows == {"http://www.wikidata.org/entity/Q42": "Douglas Adams",
                    "http://www.wikidata.org/entity/P31": "instance of"}


# -- when the source is active ------------------------------------------------------------------


def test_inactive_by_default_and_sends_nothing(canary: ScriptedServer, tmp_path):
    settings = Settings(endpoint=canary.url, cache_dir=tmp_path)
    assert not active(settings)
    validator = Validator(settings, autoload=False, block=["scoring"])
    assert validator.labels(["Q42"]) == {}
    validator.validate("Who is Q42?", ["SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }"])
    assert canary.requests == []


def test_activation_rules(tmp_path):
    assert active(Settings(endpoint_labels=True))
    assert active(Settings(check_unknown_ids=True))
    assert active(Settings(execute=True))
    assert not active(Settings.for_mode(Mode.GENERIC, endpoint_labels=True, execute=True))


def test_execution_turns_labels_on_for_scoring(scripted_server, tmp_path):
    scripted_server.script(Reply(200, label_answer({"Q42": "Douglas Adams"})))
    settings = Settings(endpoint=scripted_server.url, execute=True, cache_dir=tmp_path,
                        contact="t@example.org")
    assert Validator(settings, autoload=False, block=["scoring"]).labels(["Q42"]) == {
        "Q42": "Douglas Adams"}


# -- unknown_id -------------------------------------------------------------------------------------


def test_unknown_ids_are_errors_with_their_position(settings):
    settings = replace(settings, check_unknown_ids=True)
    validator = Validator(settings, autoload=False, block=["scoring"])
    text = "SELECT ?x WHERE {\n  wd:Q42 wdt:P99999 ?x .\n  ?x wdt:P31 wd:Q77777777 }"
    (assessment,) = validator.check([text])
    unknown = [d for d in assessment.diagnostics if d.code == "unknown_id"]
    assert [d.excerpt for d in unknown] == ["wdt:P99999", "wd:Q77777777"]
    assert all(d.severity is Severity.ERROR and d.producer == "endpoint_labels" for d in unknown)
    assert (unknown[0].line, unknown[0].column) == (2, 10)
    assert "hallucinated" in unknown[0].message
    assert not assessment.valid


def test_known_ids_pass_the_check(settings):
    settings = replace(settings, check_unknown_ids=True)
    validator = Validator(settings, autoload=False, block=["scoring"])
    (assessment,) = validator.check(["SELECT ?x WHERE { wd:Q1000002 wdt:P31 ?x . wd:Q1000001 ?p ?x }"])
    assert [d.code for d in assessment.diagnostics if d.code == "unknown_id"] == []
    assert assessment.valid


def test_no_check_unless_asked(canary, tmp_path):
    settings = Settings(endpoint=canary.url, cache_dir=tmp_path)
    (assessment,) = Validator(settings, autoload=False).check(["SELECT ?x WHERE { wd:Q77777777 ?p ?x }"])
    assert assessment.valid and canary.requests == []


def test_invalid_candidates_are_not_looked_up(canary, tmp_path):
    settings = Settings(endpoint=canary.url, check_unknown_ids=True, cache_dir=tmp_path)
    (assessment,) = Validator(settings, autoload=False).check(["SELECT ?x WHERE { wd:Q7 ?p }"])
    assert not assessment.valid
    assert [r for r in canary.requests
            if r.headers.get("User-Agent", "").startswith("kgqa-validator/")] == []


def test_a_failed_check_is_noted_not_judged(scripted_server, tmp_path):
    scripted_server.script(Reply(200, b"<html><title>Error</title></html>", "text/html"))
    settings = Settings(endpoint=scripted_server.url, check_unknown_ids=True, cache_dir=tmp_path)
    (assessment,) = Validator(settings, autoload=False).check(["SELECT ?x WHERE { wd:Q7 ?p ?x }"])
    codes = [d.code for d in assessment.diagnostics]
    assert "unknown_id" not in codes and "id_check_skipped" in codes
    assert assessment.valid


def test_cache_dir_is_configurable_and_used(scripted_server, tmp_path):
    scripted_server.script(Reply(200, label_answer({"Q42": "Douglas Adams"})))
    cache = tmp_path / "my-cache"
    lookup(["Q42"], Settings(endpoint=scripted_server.url, endpoint_labels=True, cache_dir=cache))
    assert (cache / "labels.sqlite3").is_file()
    assert not (Path(tmp_path) / "labels.sqlite3").exists()


def test_default_cache_is_under_the_users_cache_directory(scripted_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    scripted_server.script(Reply(200, label_answer({"Q42": "Douglas Adams"})))
    settings = Settings(endpoint=scripted_server.url, endpoint_labels=True)  # no cache_dir
    assert lookup(["Q42"], settings).labels == {"Q42": "Douglas Adams"}
    assert (tmp_path / "xdg" / "kgqa-validator" / "labels.sqlite3").is_file()
    assert lookup(["Q42"], settings).labels == {"Q42": "Douglas Adams"}
    assert len(scripted_server.requests) == 1  # the second lookup was answered from there
