"""Execution against a real SPARQL server (oxigraph) and the embedded store, same fixture graph."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import FIXTURE_GRAPH

from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError, EndpointError
from kgqa_validator.execution import executor_for, executor_kind
from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.embedded import EmbeddedExecutor
from kgqa_validator.execution.http_executor import HttpExecutor
from kgqa_validator.execution.politeness import EndpointRegistry
from kgqa_validator.parsing.parse import parse_query
from kgqa_validator.types import Decision, Execution, Form
from kgqa_validator.validator import Validator

WD = "http://www.wikidata.org/entity/"


@pytest.fixture(params=["http", "embedded"])
def executor(request, oxigraph_endpoint, embedded, tmp_path) -> Executor:
    if request.param == "embedded":
        return embedded
    return HttpExecutor(oxigraph_endpoint, contact="tests@example.org", registry=EndpointRegistry(),
                        cache_dir=tmp_path, cache_ttl_s=0)


def execute(executor: Executor, text: str, **settings: object) -> Execution:
    config = Settings(**settings)  # type: ignore[arg-type]
    return executor.execute(text, parse_query(text, config.prefixes), config)


def test_select_returns_rows(executor):
    execution = execute(executor, "SELECT ?work WHERE { ?work wdt:P50 wd:Q42 } ORDER BY ?work")
    assert execution.status == "ok" and execution.diagnostics == ()
    assert execution.row_count == 5
    assert execution.variables == ("work",)
    assert {"work": WD + "Q25338"} in execution.rows
    assert execution.elapsed_s >= 0


def test_rows_are_bounded_but_counted(executor):
    execution = execute(executor, "SELECT ?s ?o WHERE { ?s wdt:P31 ?o }", max_rows=4)
    assert len(execution.rows) == 4
    assert execution.row_count is not None and execution.row_count > 20


def test_ask_true_and_false(executor):
    yes = execute(executor, "ASK { wd:Q42 wdt:P31 wd:Q5 }")
    no = execute(executor, "ASK { wd:Q42 wdt:P31 wd:Q6256 }")
    assert (yes.status, yes.boolean) == ("ok", True)
    assert (no.status, no.boolean) == ("ok", False)  # false is an answer, not "empty"


def test_empty_result(executor):
    execution = execute(executor, "SELECT ?x WHERE { wd:Q42 wdt:P50 ?x }")
    assert execution.status == "empty" and execution.row_count == 0
    assert [d.code for d in execution.diagnostics] == ["empty_result"]


def test_qualifiers_of_a_spouse_statement(executor):
    text = ("SELECT ?spouse ?start WHERE { wd:Q937 p:P26 ?st . ?st ps:P26 ?spouse ; "
            "pq:P580 ?start } ORDER BY ?start")
    execution = execute(executor, text)
    assert execution.row_count == 2
    assert [r["spouse"] for r in execution.rows] == [WD + "Q76346", WD + "Q68761"]
    assert execution.rows[0]["start"].startswith("1903-01-06")


def test_aggregate_and_optional(executor):
    text = ("SELECT ?country (COUNT(?city) AS ?n) WHERE { ?city wdt:P31/wdt:P279* wd:Q515 ; "
            "wdt:P17 ?country } GROUP BY ?country ORDER BY DESC(?n) ?country")
    execution = execute(executor, text)
    assert execution.status == "ok"
    assert execution.rows[0] == {"country": WD + "Q30", "n": "4"}


def test_construct_counts_triples(executor):
    execution = execute(executor, "CONSTRUCT { ?w wdt:P50 wd:Q42 } WHERE { ?w wdt:P50 wd:Q42 }")
    assert execution.status == "ok" and execution.row_count == 5
    assert execution.rows[0]["predicate"] == "http://www.wikidata.org/prop/direct/P50"


def test_a_query_declaring_its_own_prefix_keeps_it(executor):
    text = ("PREFIX wd: <http://example.org/not-wikidata/> "
            "SELECT ?x WHERE { wd:Q42 <http://www.wikidata.org/prop/direct/P31> ?x }")
    assert execute(executor, text).status == "empty"


def test_the_server_rejecting_a_query_gives_its_message(oxigraph_endpoint, tmp_path):
    executor = HttpExecutor(oxigraph_endpoint, registry=EndpointRegistry(), cache_dir=tmp_path,
                            cache_ttl_s=0)
    execution = executor.run("SELECT ?x WHERE { ?x ?p }", Form.SELECT, 10)
    assert execution.status == "rejected"
    assert [d.code for d in execution.diagnostics] == ["endpoint_rejected"]
    assert "error at 1:" in execution.diagnostics[0].message


def test_embedded_rejects_what_it_cannot_parse(embedded):
    execution = embedded.run("SELECT ?x WHERE { ?x ?p }", Form.SELECT, 10)
    assert execution.status == "rejected" and "rejected" in execution.diagnostics[0].message


def test_embedded_cannot_run_unknown_functions(embedded):
    text = "SELECT ?x WHERE { ?x ?p ?o FILTER(<http://example.org/f>(?x)) }"
    execution = execute(embedded, text)
    assert execution.status == "error" and "not supported" in execution.diagnostics[0].message


# -- embedded: bounded work ---------------------------------------------------------------------


def test_embedded_query_is_stopped_at_the_time_limit_and_the_store_recovers():
    executor = EmbeddedExecutor(FIXTURE_GRAPH, timeout_s=1.0)
    try:
        assert execute(executor, "ASK { wd:Q42 ?p ?o }").boolean is True  # worker started
        heavy = ("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . "
                 "?m ?n2 ?o }")
        started = time.monotonic()
        execution = execute(executor, heavy)
        assert time.monotonic() - started < 5
        assert execution.status == "timeout"
        assert [d.code for d in execution.diagnostics] == ["endpoint_timeout"]
        assert executor._worker.process is None  # killed, not left running
        assert execute(executor, "ASK { wd:Q42 ?p ?o }").boolean is True  # a fresh worker
    finally:
        executor.close()


def test_embedded_planner_on_a_huge_pattern_is_bounded():
    patterns = " . ".join(f"?s{i} wdt:P31 ?o{i}" for i in range(400))
    text = f"SELECT ?s0 WHERE {{ {patterns} }} LIMIT 1"
    settings = Settings()
    parsed = parse_query(text, settings.prefixes)  # not timed: parsing is not execution
    executor = EmbeddedExecutor(FIXTURE_GRAPH, timeout_s=1.0)
    try:
        assert execute(executor, "ASK { wd:Q42 ?p ?o }").boolean is True  # worker started
        started = time.monotonic()
        execution = executor.execute(text, parsed, settings)
        assert time.monotonic() - started < 4
        assert execution.status in ("timeout", "ok", "empty")
    finally:
        executor.close()


def test_embedded_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        EmbeddedExecutor(tmp_path / "missing.ttl")
    jsonld = tmp_path / "graph.jsonld"
    jsonld.write_text("{}")
    with pytest.raises(ConfigurationError, match="unsupported RDF file type"):
        EmbeddedExecutor(jsonld)
    with pytest.raises(ConfigurationError, match="data file"):
        executor_kind(Settings(executor="embedded"))
    with pytest.raises(ConfigurationError, match="unknown executor"):
        executor_kind(Settings(executor="curl"))
    assert executor_kind(Settings(data_file=FIXTURE_GRAPH)) == "embedded"
    assert executor_kind(Settings()) == "sparqlwrapper"


def test_embedded_broken_data_file_is_an_endpoint_error(tmp_path):
    broken = tmp_path / "broken.ttl"
    broken.write_text("<http://a> <http://b> .\n")
    executor = EmbeddedExecutor(broken)
    with pytest.raises(EndpointError, match="cannot load"):
        executor.run("ASK {}", Form.ASK, 1)
    executor.close()


# -- the Validator, end to end without a model --------------------------------------------------

CANDIDATES = [
    "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }",           # right
    "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }",           # valid, empty
    "SELECT ?a WHERE { wd:Q25338 wdt:P50 }",              # invalid: never executed
    "ASK { wd:Q25338 wdt:P50 wd:Q42 }",                   # valid ASK
]


@pytest.mark.parametrize("kind", ["http", "embedded"])
def test_validator_executes_valid_candidates(kind, oxigraph_endpoint, tmp_path):
    if kind == "http":
        settings = Settings(execute=True, endpoint=oxigraph_endpoint, contact="t@example.org",
                            cache_dir=tmp_path)
    else:
        settings = Settings(execute=True, data_file=FIXTURE_GRAPH, cache_dir=tmp_path)
    validator = Validator(settings, autoload=False, block=["scoring"])
    report = validator.validate("Who wrote The Hitchhiker's Guide to the Galaxy?", CANDIDATES)
    by_index = {v.candidate.index: v for v in report.verdicts}
    right, empty, invalid, ask = (by_index[i] for i in range(4))
    assert right.execution is not None and right.execution.status == "ok"
    assert right.execution.rows == ({"a": WD + "Q42"},)
    assert empty.execution is not None and empty.execution.status == "empty"
    assert "empty_result" in [d.code for d in empty.diagnostics]
    assert invalid.execution is None and invalid.decision is Decision.REJECTED
    assert ask.execution is not None and ask.execution.boolean is True
    assert right.decision is Decision.ACCEPTED
    data = report.to_dict()
    # The encoder blocked, the consensus ranks (nothing rejected for its score): the right one
    # (an answer, and closest to the others) first; the empty one is the same query but for
    # the property, and the ASK does not answer a "who" question (form_mismatch), so both are
    # outranked by it.
    assert [(r["index"], r["verdict"]) for r in data["ranking"]] == [
        (0, "accepted"), (1, "rejected"), (3, "rejected"), (2, "rejected")]
    assert "outranked" in [d.code for d in empty.diagnostics]
    assert [d.code for d in ask.diagnostics][-2:] == ["form_mismatch", "outranked"]
    assert data["ranking"][0]["execution"]["status"] == "ok"
    expected_endpoint = oxigraph_endpoint if kind == "http" else f"embedded:{FIXTURE_GRAPH}"
    assert right.execution.endpoint == expected_endpoint


def test_validator_without_execute_runs_nothing(oxigraph_endpoint, tmp_path):
    settings = Settings(endpoint=oxigraph_endpoint, cache_dir=tmp_path)
    report = Validator(settings, autoload=False, block=["scoring"]).validate("", CANDIDATES[:1])
    assert report.verdicts[0].execution is None


def test_executors_are_shared_per_configuration(tmp_path):
    settings = Settings(data_file=FIXTURE_GRAPH, cache_dir=tmp_path)
    assert executor_for(settings) is executor_for(Settings(data_file=FIXTURE_GRAPH, cache_dir=tmp_path))
    assert executor_for(settings) is not executor_for(Settings(data_file=FIXTURE_GRAPH,
                                                               cache_dir=Path(tmp_path / "other")))
