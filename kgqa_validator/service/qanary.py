"""Qanary component: ``POST /annotatequestion`` over a shared triplestore.

The pipeline posts ``{"endpoint", "inGraph", "outGraph"}``.  The component reads the
question (``?q a qa:Question`` in ``inGraph``, text fetched from ``<q>/raw``) and the candidate
queries upstream query builders stored as ``qa:AnnotationOfAnswerSPARQL`` (``oa:hasBody`` a
literal, or a resource with ``rdf:value``), validates and scores them, and writes one
``qa:AnnotationOfAnswerSPARQL`` per candidate into ``outGraph`` with ``qa:score``,
``qa:index`` (the new rank, 1 = best), ``oa:annotatedBy <urn:qanary:kgqa-validator>``,
``oa:annotatedAt`` and the verdict (``kgv:verdict``, ``kgv:valid``, ``kgv:diagnostic``).
Every term is built with pyoxigraph, whose ``str()`` is the escaped N-Triples form; no
request text is pasted into SPARQL.

Which hosts are contacted: the triplestore only on a host the operator allowed
(``--qanary-allow-host`` or the ``--qanary-pipeline`` host), the question's ``/raw`` only on
an allowed host or the triplestore's own.  Updates go to the message's ``updateEndpoint``,
else to the endpoint itself, except that an endpoint path ending in ``/query`` (Oxigraph,
Fuseki) is updated at the sibling ``/update``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kgqa_validator.errors import EndpointError
from kgqa_validator.service.config import ServiceSettings
from kgqa_validator.service.errors import ServiceError

log = logging.getLogger(__name__)

QA = "http://www.wdaqua.eu/qa#"
OA = "http://www.w3.org/ns/openannotation/core/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD = "http://www.w3.org/2001/XMLSchema#"
KGV = "urn:kgqa-validator:"
ANNOTATOR = "urn:qanary:kgqa-validator"
MAX_RAW_BYTES = 1 << 20
HTTP_TIMEOUT_S = 20.0


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def allowed_hosts(service: ServiceSettings) -> set[str]:
    hosts = {h.lower() for h in service.qanary_fetch_hosts}
    if service.qanary_pipeline:
        hosts.add(_host(service.qanary_pipeline))
    return hosts


def update_endpoint(endpoint: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    parts = urlsplit(endpoint)
    if parts.path.endswith("/query"):
        return urlunsplit(parts._replace(path=parts.path[: -len("query")] + "update"))
    return endpoint


class Triplestore:
    """SPARQL 1.1 protocol over httpx: no redirects, bounded answers, allowed hosts only."""

    def __init__(self, endpoint: str, update_url: str, allowed: set[str]) -> None:
        import httpx

        for url in (endpoint, update_url):
            if urlsplit(url).scheme not in ("http", "https") or _host(url) not in allowed:
                raise ServiceError("host_not_allowed", 403,
                                   f"the triplestore {url!r} is not on a host this component "
                                   "may contact (--qanary-allow-host)")
        self.endpoint = endpoint
        self.update_url = update_url
        self.allowed = allowed | {_host(endpoint)}
        self.client = httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=False,
                                   headers={"User-Agent": "kgqa-validator-qanary"})

    def close(self) -> None:
        self.client.close()

    def select(self, query: str) -> list[dict[str, str]]:
        import httpx

        try:
            response = self.client.post(self.endpoint, data={"query": query},
                                        headers={"Accept": "application/sparql-results+json"})
            response.raise_for_status()
            bindings = response.json()["results"]["bindings"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EndpointError(f"triplestore query failed: {exc}") from exc
        return [{k: v["value"] for k, v in row.items()} for row in bindings]

    def update(self, update: str) -> None:
        import httpx

        try:
            self.client.post(self.update_url, data={"update": update}).raise_for_status()
        except httpx.HTTPError as exc:
            raise EndpointError(f"triplestore update failed: {exc}") from exc

    def raw_question(self, question_uri: str) -> str:
        import httpx

        url = question_uri.rstrip("/") + "/raw"
        if urlsplit(url).scheme not in ("http", "https") or _host(url) not in self.allowed:
            raise ServiceError("host_not_allowed", 403,
                               f"the question text {url!r} is not on an allowed host")
        try:
            with self.client.stream("GET", url) as response:
                response.raise_for_status()
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_RAW_BYTES:
                        raise EndpointError(f"the question at {url} is over {MAX_RAW_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise EndpointError(f"cannot fetch the question text {url}: {exc}") from exc
        return data.decode("utf-8", "replace").strip()


def _iri(value: str, what: str) -> Any:
    from pyoxigraph import NamedNode

    try:
        return NamedNode(value)
    except ValueError as exc:
        raise ServiceError("invalid_request", 422, f"{what} {value!r} is not an IRI") from exc


def _literal(value: object, datatype: str | None = None) -> str:
    from pyoxigraph import Literal, NamedNode

    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return str(Literal(text, datatype=NamedNode(datatype) if datatype else None))


def read_input(store: Triplestore, in_graph: Any) -> tuple[str, str, list[tuple[str, str]]]:
    """(question IRI, question text, [(annotation IRI, SPARQL)]) from ``in_graph``."""
    questions = store.select(f"SELECT ?q WHERE {{ GRAPH {in_graph} {{ ?q a <{QA}Question> }} }}")
    if not questions:
        raise ServiceError("invalid_request", 422, f"no qa:Question in the graph {in_graph}")
    question_uri = questions[0]["q"]
    text = store.raw_question(question_uri)
    rows = store.select(
        f"SELECT ?a ?body ?value ?index WHERE {{ GRAPH {in_graph} {{"
        f" ?a a <{QA}AnnotationOfAnswerSPARQL> ; <{OA}hasBody> ?body ."
        f" OPTIONAL {{ ?body <{RDF}value> ?value }} OPTIONAL {{ ?a <{QA}index> ?index }}"
        f" FILTER NOT EXISTS {{ ?a <{OA}annotatedBy> <{ANNOTATOR}> }} }} }}")
    seen: dict[str, tuple[str, str, float]] = {}
    for row in rows:
        sparql = row.get("value") or row["body"]
        try:
            order = float(row.get("index", "inf"))
        except ValueError:
            order = float("inf")
        seen.setdefault(row["a"], (row["a"], sparql, order))
    ordered = sorted(seen.values(), key=lambda t: (t[2], t[0]))
    return question_uri, text, [(a, s) for a, s, _ in ordered]


def annotation_update(out_graph: Any, question_uri: str, upstream: list[tuple[str, str]],
                report: dict[str, Any], now: datetime) -> str:
    """One INSERT DATA with an annotation per verdict (every term escaped by pyoxigraph)."""
    question = _iri(question_uri, "question")
    stamp = _literal(now.isoformat(timespec="seconds"), XSD + "dateTime")
    triples = []
    for verdict in report["ranking"]:
        node = f"<urn:uuid:{uuid.uuid4()}>"
        source = _iri(upstream[verdict["index"]][0], "annotation") if upstream else None
        parts = [
            f"{node} a <{QA}AnnotationOfAnswerSPARQL>",
            f"{node} <{OA}hasTarget> {question}",
            f"{node} <{OA}hasBody> {_literal(verdict['sparql'])}",
            f"{node} <{QA}index> {_literal(verdict['rank'], XSD + 'integer')}",
            f"{node} <{OA}annotatedBy> <{ANNOTATOR}>",
            f"{node} <{OA}annotatedAt> {stamp}",
            f"{node} <{KGV}verdict> {_literal(verdict['verdict'])}",
            f"{node} <{KGV}valid> {_literal(verdict['valid'], XSD + 'boolean')}",
        ]
        if verdict["score"] is not None:
            parts.append(f"{node} <{QA}score> {_literal(verdict['score'], XSD + 'double')}")
        if source is not None:
            parts.append(f"{node} <http://www.w3.org/ns/prov#wasDerivedFrom> {source}")
        for diagnostic in verdict["diagnostics"]:
            parts.append(f"{node} <{KGV}diagnostic> "
                         f"{_literal(diagnostic['code'] + ': ' + diagnostic['message'])}")
        triples.extend(parts)
    body = " .\n".join(triples)
    return f"INSERT DATA {{ GRAPH {out_graph} {{\n{body} .\n}} }}" if triples else ""


def annotate(engine: Any, message: Any) -> dict[str, Any]:
    """The whole component call (on the engine's pool)."""
    in_graph = _iri(message.in_graph, "inGraph")
    out_graph = _iri(message.out_graph, "outGraph")
    store = Triplestore(message.endpoint, update_endpoint(message.endpoint, message.update_endpoint),
                        allowed_hosts(engine.service))
    try:
        question_uri, text, upstream = read_input(store, in_graph)
        engine.check_candidates(len(upstream))
        report = engine.validate(text, [s for _, s in upstream])
        update = annotation_update(out_graph, question_uri, upstream, report, datetime.now(UTC))
        if update:
            store.update(update)
    finally:
        store.close()
    log.info("annotated %s: %d candidates", question_uri, len(upstream))
    return {**message.echo(), "kgqa_validator": {"question": question_uri,
                                                 "annotations": len(report["ranking"])}}


class Registration:
    """Registers with a Qanary pipeline (Spring Boot Admin ``/instances``) every 10 s."""

    def __init__(self, service: ServiceSettings, interval_s: float = 10.0) -> None:
        self.service = service
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="qanary-registration")
        url = service.public_url or f"http://{service.host}:{service.port}"
        self.body = {"name": service.component_name, "serviceUrl": url,
                     "healthUrl": url.rstrip("/") + "/health", "managementUrl": url,
                     "metadata": {"start": datetime.now(UTC).isoformat(),
                                  "description": "kgqa-validator: validates, scores and ranks "
                                                 "candidate SPARQL queries"}}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        import httpx

        assert self.service.qanary_pipeline is not None
        target = self.service.qanary_pipeline.rstrip("/") + "/instances"
        while not self._stop.is_set():
            try:
                httpx.post(target, json=self.body, timeout=10, follow_redirects=False)
            except httpx.HTTPError as exc:
                log.warning("Qanary registration at %s failed: %s", target, exc)
            self._stop.wait(self.interval_s)
