"""Issue 8, critical: no spelling of a query gets a SERVICE, FROM or update past the checks.

Each case hides a clause from a tokenizer that misreads SPARQL: a code point escape inside an
IRI (``<urn\\u003Ax>``, which pyoxigraph decodes), a bracket, quote or ``#`` after one, a
comment ended by a carriage return, an escape that the SPARQL 1.1 text (and Java stores)
decode before tokenizing, an escaped keyword, and a query that redeclares ``wikibase:``.
Every case goes through ``check``, the HTTP executor against the real oxigraph server (which
*would* follow a SERVICE, see the control in test_execution_refusal.py), the embedded
executor and ``rerank --execute``; the canary must see nothing.  The second barrier is tested
on its own: a worker process cannot open a TCP connection even for a query no check has seen.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ScriptedServer

from kgqa_validator import Settings, Validator
from kgqa_validator.cli import main
from kgqa_validator.execution import close_executors
from kgqa_validator.execution.http_executor import HttpExecutor
from kgqa_validator.execution.politeness import EndpointRegistry
from kgqa_validator.parsing.parse import parse_query
from kgqa_validator.types import Severity

ROOT = Path(__file__).resolve().parents[1]


def bypasses(canary: str) -> dict[str, str]:
    base = canary.rsplit("/", 1)[0]
    cases = {
        # The issue's cases.
        "escaped_iri_then_hash": (
            "PREFIX http: <urn:x:>\nSELECT ?s WHERE { ?s a <http://wikiba.se/ontolog\\u0079#Property> "
            f". SERVICE <{canary}> {{ ?s ?b ?c }}\n}}"),
        "describe_from": (
            f"DESCRIBE ?s <http://x/\\u0041#> FROM <{base}/g> FROM NAMED <file:///etc/passwd> "
            "WHERE { ?s ?p ?o }"),
        "label_prefix_hijack": (
            f"PREFIX wikibase: <{base}/hijack#>\nSELECT ?x ?xLabel WHERE {{ ?x ?p ?o . SERVICE "
            "wikibase:label { bd:serviceParam wikibase:language \"en\" } }"),
        # Escaped keywords: pyoxigraph reads them as errors, Java stores as keywords.
        "escaped_service_keyword": f"SELECT * WHERE {{ \\u0053ERVICE <{canary}> {{ ?s ?p ?o }} }}",
        "escaped_from_keyword": f"SELECT * \\u0046ROM <{base}/g> WHERE {{ ?s ?p ?o }}",
        "escaped_load_keyword": f"\\u004COAD <{base}/g>",
        # An escape that decodes to a delimiter: one query for pyoxigraph, another for the
        # SPARQL 1.1 text (both valid), which runs the SERVICE.
        "escaped_quote_in_string": (
            f"SELECT * WHERE {{ ?s ?p \"\\u0022 . SERVICE <{canary}> {{ ?a ?b ?c }} }} #\" }}"),
        "escaped_iri_end": (
            f"SELECT * WHERE {{ ?s ?p <urn:a\\u003E . SERVICE <{canary}> {{ ?a ?b ?c }} }} # > }}"),
        "escaped_newline_in_comment": (
            f"SELECT * WHERE {{ ?s ?p ?o # \\u000A SERVICE <{canary}> {{ ?a ?b ?c }}\n}}"),
        # A carriage return ends a comment for pyoxigraph.
        "comment_ended_by_cr": f"SELECT * WHERE {{ ?s ?p ?o # x\r SERVICE <{canary}> {{ ?a ?b ?c }} }}",
    }
    # Every bracket kind, quote and # an IRI may hold, after an escape in the SERVICE target
    # (the parser worker itself once called /svc().
    for name, char in {"paren_open": "(", "paren_close": ")", "square_open": "[",
                       "square_close": "]", "quote": "'", "hash": "#"}.items():
        cases[f"escaped_target_{name}"] = (
            f"SELECT ?s WHERE {{ SERVICE <{base}/\\u0073vc{char}> {{ ?s ?p ?o }} }}")
        cases[f"escaped_iri_{name}_before_service"] = (
            f"SELECT ?s WHERE {{ ?s ?p <http://x/\\u0041{char}> . "
            f"SERVICE <{canary}> {{ ?s ?b ?c }} }}")
    cases["escaped_iri_then_quote"] = (
        f"SELECT ?s WHERE {{ ?s ?p <http://x/\\u0041> . SERVICE <{canary}> {{ ?s ?b ?c }} }} # \"")
    return cases


NAMES = sorted(bypasses("http://127.0.0.1:1/sparql"))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(Settings(), autoload=False, block=["scoring"])


@pytest.mark.parametrize("name", NAMES)
def test_check_rejects_every_bypass(name: str, validator: Validator, canary: ScriptedServer):
    text = bypasses(canary.url)[name]
    (assessment,) = validator.check([text])
    assert not assessment.valid, (name, assessment.diagnostics)
    errors = {d.code for d in assessment.diagnostics if d.severity is Severity.ERROR}
    assert errors & {"external_service", "dataset_clause", "ambiguous_escape", "syntax_error",
                     "update_operation"}, (name, errors)
    assert canary.requests == []


def test_the_issue_cases_get_the_right_diagnostics(validator: Validator, canary: ScriptedServer):
    cases = bypasses(canary.url)
    expect = {"escaped_iri_then_hash": "external_service", "describe_from": "dataset_clause",
              "label_prefix_hijack": "external_service",
              "escaped_target_paren_open": "external_service",
              "comment_ended_by_cr": "external_service",
              "escaped_service_keyword": "ambiguous_escape",
              "escaped_quote_in_string": "ambiguous_escape"}
    for name, code in expect.items():
        (assessment,) = validator.check([cases[name]])
        assert code in {d.code for d in assessment.diagnostics}, (name, assessment.diagnostics)
    assert canary.requests == []


def test_a_valid_escape_is_still_valid(validator: Validator):
    # Escapes that read the same either way stay valid, and the IRI is decoded.
    (assessment,) = validator.check([
        "SELECT ?x WHERE { ?x <http://www.wikidata.org/prop/direct/P\\u0033\\u0031> "
        "\"caf\\u00E9\" }"])
    assert assessment.valid, assessment.diagnostics
    text = ("PREFIX wikibase: <http://wikiba.se/ontolog\\u0079#>\nSELECT ?x ?xLabel WHERE { ?x "
            "wdt:P31 wd:Q5 . SERVICE wikibase:label { bd:serviceParam wikibase:language \"en\" } }")
    (assessment,) = validator.check([text])
    assert assessment.valid, assessment.diagnostics


@pytest.mark.parametrize("name", NAMES)
def test_executors_send_nothing(name: str, canary: ScriptedServer, oxigraph_endpoint, embedded,
                                tmp_path):
    text = bypasses(canary.url)[name]
    settings = Settings()
    parsed = parse_query(text, settings.prefixes)
    for endpoint in (canary.url, oxigraph_endpoint):
        executor = HttpExecutor(endpoint, contact="t@example.org", registry=EndpointRegistry(),
                                cache_dir=tmp_path, cache_ttl_s=0)
        assert executor.execute(text, parsed, settings).status == "refused", (name, endpoint)
    assert embedded.execute(text, parsed, settings).status == "refused", name
    # The embedded worker's own check, for a caller that skips the refusal rules.
    assert embedded.run(text, parsed.form, 10).status in ("refused", "rejected"), name
    assert canary.requests == []


def test_rerank_execute_sends_nothing(capsys, canary: ScriptedServer, oxigraph_endpoint, tmp_path):
    right = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"  # the control: this one does run
    candidates = [*bypasses(canary.url).values(), right]
    for executor in (["--endpoint", oxigraph_endpoint],
                     ["--executor", "embedded", "--data", str(ROOT / "fixtures" / "wikidata_sample.ttl")]):
        code = main(["rerank", "--no-plugins", "--block", "scoring", "--execute", *executor,
                     "--cache-dir", str(tmp_path), "--json", "-q", "Who?", *candidates])
        out, err = capsys.readouterr()
        assert code == 0, err
        report = json.loads(out)
        for entry in report["ranking"]:
            execution = entry.get("execution")
            if entry["index"] == len(candidates) - 1:
                assert execution["status"] == "ok", entry
            else:
                assert execution is None or execution["status"] == "refused", entry
    close_executors()
    assert canary.requests == []


# -- the second barrier -------------------------------------------------------------------------

_UNGUARDED = textwrap.dedent("""
    import sys
    from kgqa_validator.worker_process import child_connections
    from kgqa_validator import network_fence
    child_connections()
    import pyoxigraph
    try:
        list(pyoxigraph.Store().query("SELECT * WHERE { SERVICE <%s> { ?s ?p ?o } }"))
        outcome = "no error"
    except Exception as exc:
        outcome = repr(exc)
    sys.stderr.write("fenced=%%s %%s" %% (network_fence.fenced(), outcome))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux only")
def test_a_worker_cannot_reach_the_network_whatever_it_runs(canary: ScriptedServer):
    # No lexer, no masking, no refusal: pyoxigraph gets the SERVICE query as it is, inside a
    # process set up as every worker is.  (test_execution_refusal.py shows that the same
    # query outside a worker does reach the canary.)
    done = subprocess.run([sys.executable, "-c", _UNGUARDED % canary.url],
                          stdin=subprocess.PIPE, capture_output=True, cwd=ROOT, timeout=60,
                          check=False)
    report = done.stderr.decode()
    assert "fenced=True" in report, report
    assert "no error" not in report
    assert canary.requests == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux only")
def test_the_running_workers_are_fenced(validator: Validator, embedded):
    from kgqa_validator.builtin.parse import pool_for

    validator.check(["SELECT * WHERE { ?s ?p ?o }"])
    embedded.run("ASK { ?s ?p ?o }", parse_query("ASK { ?s ?p ?o }", {}).form, 1)
    processes = [w.process for w in pool_for(validator.settings).workers if w.process] \
        + [embedded._worker.process]
    assert processes
    for process in processes:
        assert process is not None
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert "Seccomp:\t2" in status
