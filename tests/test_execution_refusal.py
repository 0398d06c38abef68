"""Never act for the query: a canary server proves that refused queries cause no request.

The control tests first show that the canary *does* see the request when the query reaches
pyoxigraph or the oxigraph server unguarded, so the canary tests cannot pass vacuously.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ScriptedServer

from kgqa_validator.config import Settings
from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.http_executor import HttpExecutor
from kgqa_validator.execution.politeness import EndpointRegistry
from kgqa_validator.execution.refusal import answers_label_service, refusal_reason
from kgqa_validator.parsing.lexer import analyse
from kgqa_validator.parsing.parse import parse_query
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
from kgqa_validator.types import Decision, Form
from kgqa_validator.validator import Validator


def hostile(canary: str) -> dict[str, str]:
    """Queries that would make a store contact ``canary`` (or change data) if run."""
    base = canary.rsplit("/", 1)[0]
    return {
        "service": f"SELECT * WHERE {{ SERVICE <{canary}> {{ ?s ?p ?o }} }}",
        "service_silent": f"SELECT * WHERE {{ SERVICE SILENT <{canary}> {{ ?s ?p ?o }} }}",
        "service_lowercase": f"select * where {{ service <{canary}> {{ ?s ?p ?o }} }}",
        "service_prefixed": f"PREFIX c: <{base}/> SELECT * WHERE {{ SERVICE c:sparql {{ ?s ?p ?o }} }}",
        "service_variable": f"SELECT * WHERE {{ VALUES ?svc {{ <{canary}> }} SERVICE ?svc {{ ?s ?p ?o }} }}",
        "service_ask": f"ASK {{ SERVICE <{canary}> {{ ?s ?p ?o }} }}",
        "service_nested": (f"SELECT ?s WHERE {{ wd:Q42 ?p ?o . OPTIONAL {{ SELECT ?s WHERE {{ "
                           f"SERVICE <{canary}> {{ ?s ?p2 ?o2 }} }} }} }}"),
        "label_service_elsewhere": ("SELECT ?x ?xLabel WHERE { ?x wdt:P31 wd:Q5 . SERVICE "
                                    "wikibase:label { bd:serviceParam wikibase:language \"en\" } }"),
        "from": f"SELECT * FROM <{base}/data.ttl> WHERE {{ ?s ?p ?o }}",
        "from_named": f"SELECT * FROM NAMED <{base}/data.ttl> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        "from_file": "SELECT * FROM <file:///etc/passwd> WHERE { ?s ?p ?o }",
        "load": f"LOAD <{base}/data.ttl>",
        "insert": "INSERT DATA { wd:Q42 wdt:P31 wd:Q5 }",
        "delete": "DELETE WHERE { ?s ?p ?o }",
        "clear": "CLEAR ALL",
        "not_sparql": f"GET {canary}",
    }


def _http(url: str, tmp_path: Path) -> HttpExecutor:
    return HttpExecutor(url, contact="tests@example.org", registry=EndpointRegistry(),
                        cache_dir=tmp_path, cache_ttl_s=0)


# -- controls: the canary does see unguarded requests ----------------------------------------


def test_control_pyoxigraph_itself_calls_the_service(canary: ScriptedServer):
    import pyoxigraph

    store = pyoxigraph.Store()
    try:
        list(store.query(hostile(canary.url)["service"]))
    except (OSError, RuntimeError, SyntaxError, ValueError):
        pass  # the canary's answer is not SPARQL results
    assert len(canary.requests) == 1


def test_control_the_oxigraph_server_calls_the_service(canary: ScriptedServer, oxigraph_endpoint):
    query = hostile(canary.url)["service"]
    url = oxigraph_endpoint + "?" + urllib.parse.urlencode({"query": query})
    try:
        urllib.request.urlopen(url, timeout=10).read()
    except (urllib.error.URLError, ConnectionError):
        pass
    assert len(canary.requests) >= 1


# -- the canary tests -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(hostile("http://x/y")))
def test_http_executor_sends_nothing_for_a_hostile_query(name, canary, oxigraph_endpoint, tmp_path):
    text = hostile(canary.url)[name]
    settings = Settings()
    parsed = parse_query(text, settings.prefixes)
    before = len(canary.requests)
    # The canary as the endpoint proves no request at all; the oxigraph server as the
    # endpoint proves no request through a store that would follow the SERVICE.
    for endpoint in (canary.url, oxigraph_endpoint):
        execution = _http(endpoint, tmp_path).execute(text, parsed, settings)
        assert execution.status == "refused", (name, execution)
        assert [d.code for d in execution.diagnostics] == ["execution_refused"]
    assert canary.requests[before:] == []


@pytest.mark.parametrize("name", sorted(hostile("http://x/y")))
def test_embedded_executor_sends_nothing_for_a_hostile_query(name, canary, embedded):
    text = hostile(canary.url)[name]
    settings = Settings()
    parsed = parse_query(text, settings.prefixes)
    before = len(canary.requests)
    execution = embedded.execute(text, parsed, settings)
    assert execution.status == "refused", (name, execution)
    assert canary.requests[before:] == []


def test_embedded_worker_refuses_on_its_own(canary, embedded):
    # run() is for trusted queries and skips the refusal rules; the worker still checks.
    for name in ("service", "service_variable", "from"):
        execution = embedded.run(hostile(canary.url)[name], Form.SELECT, 10)
        assert execution.status == "refused", name
    assert canary.requests == []
    assert embedded.run("ASK { wd:Q42 ?p ?o }".replace("wd:Q42", "<http://www.wikidata.org/entity/Q42>"),
                        Form.ASK, 1).boolean is True


@pytest.mark.parametrize("executor_kind", ["http", "embedded"])
def test_a_parse_that_missed_the_service_does_not_open_the_door(
        executor_kind, canary, embedded, tmp_path):
    text = hostile(canary.url)["service"]
    settings = Settings()
    lying = replace(parse_query(text, settings.prefixes), services=(), datasets=())
    before = len(canary.requests)
    executor: Executor = _http(canary.url, tmp_path) if executor_kind == "http" else embedded
    assert executor.execute(text, lying, settings).status == "refused"
    assert canary.requests[before:] == []


def test_parsing_a_service_query_sends_nothing(canary):
    before = len(canary.requests)
    for name in ("service", "service_silent", "service_prefixed"):
        parse_query(hostile(canary.url)[name], WIKIDATA_PREFIXES)
    assert canary.requests[before:] == []


def test_invalid_queries_are_not_sent(canary, tmp_path):
    settings = Settings()
    for text in ("SELECT ?x WHERE { ?x wdt:P31 }", "SELECT ?x WHERE { ?x wdt:P31 ?y", ""):
        execution = _http(canary.url, tmp_path).execute(text, parse_query(text, settings.prefixes),
                                                         settings)
        assert execution.status == "refused"
        assert "not valid" in execution.diagnostics[0].message
    assert canary.requests == []


def test_a_valid_query_does_reach_the_canary(canary, tmp_path):
    # The counterpart of every test above: the same path does send what it may send.
    text = "SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }"
    settings = Settings()
    execution = _http(canary.url, tmp_path).execute(text, parse_query(text, settings.prefixes), settings)
    assert execution.status == "ok"
    assert len(canary.requests) == 1


# -- the label service ------------------------------------------------------------------------

LABEL_QUERY = ("SELECT ?x ?xLabel WHERE { ?x wdt:P31 wd:Q5 . "
               "SERVICE wikibase:label { bd:serviceParam wikibase:language \"en\" } }")


def test_the_label_service_passes_only_for_the_wikidata_query_service():
    parsed = parse_query(LABEL_QUERY, WIKIDATA_PREFIXES)
    facts = analyse(LABEL_QUERY)
    assert refusal_reason(LABEL_QUERY, parsed, WIKIDATA_PREFIXES, allow_label_service=True,
                          max_chars=10_000, facts=facts) is None
    assert "wikibase:label" in (refusal_reason(
        LABEL_QUERY, parsed, WIKIDATA_PREFIXES, allow_label_service=False, max_chars=10_000,
        facts=facts) or "")
    assert answers_label_service("https://query.wikidata.org/sparql")
    assert answers_label_service("https://query-main.wikidata.org/sparql")
    assert not answers_label_service("http://127.0.0.1:7878/query")
    assert not answers_label_service("https://wikidata.org.evil.example/sparql")
    assert HttpExecutor("https://query.wikidata.org/sparql", contact="t@example.org",
                        registry=EndpointRegistry()).answers_label_service


def test_a_label_service_iri_spelled_out_is_still_the_label_service():
    text = ("SELECT ?x WHERE { ?x ?p ?o SERVICE <http://wikiba.se/ontology#label> "
            "{ bd:serviceParam <http://wikiba.se/ontology#language> \"en\" } }")
    parsed = parse_query(text, WIKIDATA_PREFIXES)
    assert refusal_reason(text, parsed, WIKIDATA_PREFIXES, allow_label_service=True,
                          max_chars=10_000) is None
    other = text.replace("ontology#label", "ontology#labels")
    assert refusal_reason(other, parse_query(other, WIKIDATA_PREFIXES), WIKIDATA_PREFIXES,
                          allow_label_service=True, max_chars=10_000) is not None


# -- through the Validator --------------------------------------------------------------------


def test_validator_never_sends_a_hostile_candidate(canary, tmp_path):
    queries = hostile(canary.url)
    candidates = [queries["service"], queries["from"], queries["load"],
                  "SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }"]
    # Lints blocked too: the candidates reach the executor as "valid", and it refuses.
    for block in (["scoring"], ["scoring", "lints"]):
        settings = Settings(execute=True, endpoint=canary.url, contact="t@example.org",
                            cache_dir=tmp_path / "cache", cache_ttl_s=0)
        report = Validator(settings, autoload=False, block=block).validate("", candidates)
        by_index = {v.candidate.index: v for v in report.verdicts}
        for index in (0, 1, 2):
            assert by_index[index].decision is Decision.REJECTED
        assert by_index[3].decision is Decision.ACCEPTED
        assert by_index[3].execution is not None and by_index[3].execution.status == "ok"
        if block == ["scoring", "lints"]:
            for index in (0, 1):
                execution = by_index[index].execution
                assert execution is not None and execution.status == "refused"
    # Only this library's requests count here.
    ours = [r for r in canary.requests if r.headers.get("User-Agent", "").startswith("kgqa-validator/")]
    sent = [urllib.parse.parse_qs(urllib.parse.urlsplit(r.path).query).get("query", [""])[0]
            for r in ours]
    assert len(sent) == 2  # the valid candidate, once per validator
    assert all(q.rstrip().endswith("SELECT ?x WHERE { wd:Q42 wdt:P31 ?x }") for q in sent)
