"""The Qanary component round trip against a real triplestore (the ``oxigraph`` server).

The test plays the pipeline: it writes a Qanary-shaped graph (a ``qa:Question`` and the
``qa:AnnotationOfAnswerSPARQL`` candidates of an upstream query builder), calls
``/annotatequestion`` over HTTP, and reads the component's annotations back with SPARQL.
The question text is served at ``<question>/raw`` by a small scripted server, as the Qanary
pipeline serves it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Reply, ScriptedServer, oxigraph_server
from service_process import running_service

QUESTION = "Who is the author of The Hitchhiker's Guide to the Galaxy?"
GOOD = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"
WRONG = "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }"
# A body that would break out of a pasted string literal and drop the graph.
HOSTILE = 'SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a } # """ } } ; DROP ALL ; INSERT DATA { "\n\\'
LABELS = Path(__file__).resolve().parent.parent / "fixtures" / "labels.json"
QA = "http://www.wdaqua.eu/qa#"
IN_GRAPH = "urn:graph:qanary-test"
OUT_GRAPH = "urn:graph:qanary-out"


@pytest.fixture(scope="module")
def triplestore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A writable oxigraph server; yields its query URL (updates at the sibling /update)."""
    with oxigraph_server(tmp_path_factory.mktemp("qanary") / "db", writable=True) as url:
        yield url


@pytest.fixture(scope="module")
def pipeline() -> Iterator[ScriptedServer]:
    """Serves the question text at any path (``<question>/raw``) and records registrations."""
    server = ScriptedServer()
    server.script(Reply(body=QUESTION.encode(), content_type="text/plain; charset=utf-8"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def component(pipeline: ScriptedServer) -> Iterator[str]:
    base = pipeline.url.rsplit("/", 1)[0]
    with running_service("--labels", str(LABELS), "--qanary-pipeline", base) as url:
        yield url


def update(triplestore: str, text: str) -> None:
    httpx.post(triplestore.rsplit("/", 1)[0] + "/update", data={"update": text},
               timeout=30).raise_for_status()


def select(triplestore: str, query: str) -> list[dict[str, str]]:
    response = httpx.post(triplestore, data={"query": query}, timeout=30,
                          headers={"Accept": "application/sparql-results+json"})
    response.raise_for_status()
    return [{k: v["value"] for k, v in row.items()} for row in response.json()["results"]["bindings"]]


def write_qanary_graph(triplestore: str, question_uri: str) -> None:
    from pyoxigraph import Literal

    bodies = [Literal(WRONG), Literal(HOSTILE)]
    update(triplestore, f"""
        PREFIX qa: <http://www.wdaqua.eu/qa#>
        PREFIX oa: <http://www.w3.org/ns/openannotation/core/>
        PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
        PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
        INSERT DATA {{ GRAPH <{IN_GRAPH}> {{
          <{question_uri}> a qa:Question .
          <urn:ann:1> a qa:AnnotationOfAnswerSPARQL ; oa:hasTarget <{question_uri}> ;
              oa:hasBody {bodies[0]} ; qa:index "0"^^xsd:integer ;
              oa:annotatedBy <urn:qanary:QueryBuilder> .
          <urn:ann:2> a qa:AnnotationOfAnswerSPARQL ; oa:hasTarget <{question_uri}> ;
              oa:hasBody <urn:body:2> ; qa:index "1"^^xsd:integer ;
              oa:annotatedBy <urn:qanary:QueryBuilder> .
          <urn:body:2> a qa:SparqlQuery ; rdf:value "{GOOD}" .
          <urn:ann:3> a qa:AnnotationOfAnswerSPARQL ; oa:hasTarget <{question_uri}> ;
              oa:hasBody {bodies[1]} ; qa:index "2"^^xsd:integer ;
              oa:annotatedBy <urn:qanary:QueryBuilder> .
        }} }}""")


def test_round_trip_candidates_in_scored_annotations_out(
        triplestore: str, pipeline: ScriptedServer, component: str) -> None:
    question_uri = pipeline.url.rsplit("/", 1)[0] + "/question/stored/abc"
    write_qanary_graph(triplestore, question_uri)
    message = {"endpoint": triplestore, "inGraph": IN_GRAPH, "outGraph": OUT_GRAPH,
               "questionId": "abc"}
    response = httpx.post(component + "/annotatequestion", json=message, timeout=120)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert {k: answer[k] for k in message} == message  # the message goes on down the pipeline
    assert any(r.path == "/question/stored/abc/raw" for r in pipeline.requests)

    rows = select(triplestore, f"""
        PREFIX qa: <http://www.wdaqua.eu/qa#>
        PREFIX oa: <http://www.w3.org/ns/openannotation/core/>
        SELECT ?body ?index ?score ?verdict ?valid ?at ?target ?source WHERE {{
          GRAPH <{OUT_GRAPH}> {{
            ?a a qa:AnnotationOfAnswerSPARQL ; oa:annotatedBy <urn:qanary:kgqa-validator> ;
               oa:hasBody ?body ; qa:index ?index ; oa:annotatedAt ?at ; oa:hasTarget ?target ;
               <urn:kgqa-validator:verdict> ?verdict ; <urn:kgqa-validator:valid> ?valid ;
               <http://www.w3.org/ns/prov#wasDerivedFrom> ?source .
            OPTIONAL {{ ?a qa:score ?score }}
          }} }} ORDER BY ?index""")
    assert [int(r["index"]) for r in rows] == [1, 2, 3]
    assert rows[0]["body"] == GOOD and rows[0]["source"] == "urn:ann:2"
    assert rows[0]["verdict"] == "accepted" and rows[0]["valid"] == "true"
    assert float(rows[0]["score"]) > float(rows[1].get("score", "-1"))
    assert {r["body"] for r in rows} == {GOOD, WRONG, HOSTILE}  # stored exactly, nothing broke out
    assert all(r["target"] == question_uri and r["at"].startswith("20") for r in rows)
    # The upstream annotations are intact (no DROP ran).
    upstream = f"SELECT ?a WHERE {{ GRAPH <{IN_GRAPH}> {{ ?a a <{QA}AnnotationOfAnswerSPARQL> }} }}"
    assert len(select(triplestore, upstream)) == 3


def test_registers_with_the_pipeline(component: str, pipeline: ScriptedServer) -> None:
    deadline = time.monotonic() + 15
    while not any(r.path == "/instances" for r in pipeline.requests):
        assert time.monotonic() < deadline, "no registration within 15 s"
        time.sleep(0.2)
    import json

    seen = next(r for r in pipeline.requests if r.path == "/instances")
    body = json.loads(seen.body)
    assert body["name"] == "kgqa-validator" and body["healthUrl"].endswith("/health")


@pytest.mark.parametrize("field", ["endpoint", "question"])
def test_hosts_the_operator_did_not_allow_are_not_contacted(
        triplestore: str, component: str, canary: ScriptedServer, field: str) -> None:
    canary_base = canary.url.rsplit("/", 1)[0].replace("127.0.0.1", "localhost")
    if field == "endpoint":
        message = {"endpoint": canary_base + "/query", "inGraph": IN_GRAPH, "outGraph": OUT_GRAPH}
    else:
        graph = "urn:graph:elsewhere"
        update(triplestore, f"INSERT DATA {{ GRAPH <{graph}> {{ <{canary_base}/q/1> a <{QA}Question> }} }}")
        message = {"endpoint": triplestore, "inGraph": graph, "outGraph": graph}
    # The pipeline host (127.0.0.1) is allowed; "localhost" is another name the operator did not give.
    response = httpx.post(component + "/annotatequestion", json=message, timeout=60)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "host_not_allowed"
    assert canary.requests == []


def test_bad_messages_are_4xx(component: str, triplestore: str) -> None:
    bad_graph = {"endpoint": triplestore, "inGraph": "not an iri> }", "outGraph": OUT_GRAPH}
    response = httpx.post(component + "/annotatequestion", json=bad_graph, timeout=60)
    assert response.status_code == 422
    missing = httpx.post(component + "/annotatequestion", json={"endpoint": triplestore}, timeout=60)
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "invalid_request"
