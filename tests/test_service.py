"""The HTTP service, started as a user starts it (``kgqa-validator serve``), over real HTTP."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from service_process import running_service

from kgqa_validator.config import Settings
from kgqa_validator.report_json import report_to_json
from kgqa_validator.validator import Validator

QUESTION = "Who is the author of The Hitchhiker's Guide to the Galaxy?"
GOOD = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"
WRONG = "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }"
BROKEN = "SELECT ?a WHERE { wd:Q25338 wdt:P50 }"
LABELS = Path(__file__).resolve().parent.parent / "fixtures" / "labels.json"


@pytest.fixture(scope="module")
def service() -> Any:
    # fp32: in bf16 (the "auto" choice on a CPU with native bf16) a cosine moves by up to
    # ~0.003 with the batch it was computed in, and the comparison below is to 1e-4.
    with running_service("--labels", str(LABELS), "--precision", "fp32", "--max-candidates", "20",
                         "--max-queries", "50", "--max-body", "65536", "--body-timeout", "2") as url:
        yield url


def post(url: str, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60, **kwargs)


def test_validate_gives_the_report_the_cli_json_gives(service: str) -> None:
    candidates = [WRONG, BROKEN, GOOD]
    response = post(service, "/validate", {"question": QUESTION, "candidates": candidates})
    assert response.status_code == 200
    expected = report_to_json(Validator(Settings(labels_files=(LABELS,), precision="fp32"),
                                        autoload=False).validate(QUESTION, candidates))
    got = response.json()
    assert [r["sparql"] for r in got["ranking"]] == [r["sparql"] for r in expected["ranking"]]
    assert got["ranking"][0]["sparql"] == GOOD
    for mine, theirs in zip(got["ranking"], expected["ranking"], strict=True):
        assert mine["verdict"] == theirs["verdict"] and mine["valid"] == theirs["valid"]
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-4) if theirs["score"] else True
    broken = next(r for r in got["ranking"] if r["sparql"] == BROKEN)
    assert broken["valid"] is False and broken["diagnostics"]


def test_batch_and_check(service: str) -> None:
    batch = post(service, "/validate/batch", {"items": [
        {"question": QUESTION, "candidates": [GOOD, WRONG]},
        {"question": "Is Berlin the capital of Germany?", "candidates": ["ASK { wd:Q183 wdt:P36 wd:Q64 }"]},
    ]})
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert len(results) == 2 and results[0]["ranking"][0]["sparql"] == GOOD
    check = post(service, "/check", {"queries": [GOOD, BROKEN, "DELETE WHERE { ?s ?p ?o }", "\x00{{"]})
    assert check.status_code == 200
    rows = check.json()["results"]
    assert [r["valid"] for r in rows] == [True, False, False, False]
    assert rows[1]["diagnostics"][0]["line"] == 1


def test_health_version_plugins_openapi(service: str) -> None:
    assert httpx.get(service + "/health").json()["status"] == "UP"
    version = httpx.get(service + "/version").json()
    assert version["execute_allowed"] is False and version["limits"]["max_candidates"] == 20
    names = {p["name"] for p in httpx.get(service + "/plugins").json()["plugins"]}
    assert {"parse", "scoring", "decide"} <= names
    spec = httpx.get(service + "/openapi.json").json()
    assert {"/validate", "/validate/batch", "/check", "/annotatequestion"} <= set(spec["paths"])
    body = spec["components"]["schemas"]["ValidateRequest"]
    assert body["examples"][0]["candidates"]


@pytest.mark.parametrize(("body", "status", "code"), [
    (b'{"question": "\xff\xfe", "candidates": []}', 400, "invalid_json"),
    (b"[" * 1000 + b"]" * 1000, 400, "invalid_json"),
    (b'{"question": "q", "candidates": [' + b"[" * 1000 + b"]" * 1000 + b"]}", 400, "invalid_json"),
    (b"not json", 400, "invalid_json"),
    (b'{"question": 1, "candidates": ["x"]}', 422, "invalid_request"),
    (b'{"question": "q", "candidates": "SELECT * {}"}', 422, "invalid_request"),
    (b'{"question": "q", "candidates": [1, 2]}', 422, "invalid_request"),
    (b'{"question": "q", "candidates": [], "options": {"threshold": "high"}}', 422, "invalid_request"),
    (b'{"question": "q", "candidates": [], "surprise": true}', 422, "invalid_request"),
    (b'{"question": "q", "candidates": ["x"], "options": {"execute": true}}', 403,
     "execute_not_allowed"),
    (json.dumps({"question": "q", "candidates": ["ASK {}"] * 21}).encode(), 422,
     "too_many_candidates"),
])
def test_hostile_bodies_are_4xx_json_with_a_code(service: str, body: bytes, status: int,
                                                 code: str) -> None:
    response = httpx.post(service + "/validate", content=body, timeout=30)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_check_limits(service: str) -> None:
    too_many = post(service, "/check", {"queries": ["ASK {}"] * 51})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "too_many_queries"
    assert post(service, "/check", {"queries": "ASK {}"}).json()["error"]["code"] == "invalid_request"


def test_a_request_past_its_deadline_stops_between_chunks() -> None:
    from kgqa_validator.service import ServiceSettings
    from kgqa_validator.service.engine import Engine
    from kgqa_validator.service.errors import ServiceError

    engine = Engine(ServiceSettings(no_plugins=True))
    try:
        with pytest.raises(ServiceError) as caught:
            engine.check(["ASK {}"] * 100, deadline=time.monotonic() - 1)
        assert caught.value.code == "timeout" and caught.value.status == 503
        assert len(engine.check(["ASK {}"] * 40, deadline=time.monotonic() + 60)) == 40
    finally:
        engine.close()


def test_body_limit_is_413_declared_or_chunked(service: str) -> None:
    big = b'{"question": "q", "candidates": ["' + b"x" * 70_000 + b'"]}'
    response = httpx.post(service + "/validate", content=big, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"

    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 8192

    chunked = httpx.post(service + "/validate", content=chunks(), timeout=30)
    assert chunked.status_code == 413
    assert httpx.get(service + "/health").status_code == 200


def test_slow_sender_gets_408_and_others_are_served_meanwhile(service: str) -> None:
    parts = urlsplit(service)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        started = time.monotonic()
        ok = post(service, "/validate", {"question": QUESTION, "candidates": [GOOD]})
        assert ok.status_code == 200
        answer = b""
        while b"\r\n\r\n" not in answer:
            sock.sendall(b" ")  # a byte now and then: still too slow
            try:
                sock.settimeout(0.5)
                answer += sock.recv(4096)
            except TimeoutError:
                pass
            assert time.monotonic() - started < 15
    assert answer.startswith(b"HTTP/1.1 408")


def test_lone_surrogates_and_invalid_candidates_are_diagnostics(service: str) -> None:
    # json.dumps writes the lone surrogate as \ud800, valid JSON syntax; pydantic refuses it as
    # not Unicode: a 400, never a 500.
    response = httpx.post(service + "/validate", timeout=30, content=json.dumps(
        {"question": QUESTION, "candidates": ["SELECT ?x { ?x ?p '\ud800' }"]}).encode())
    assert response.status_code == 400
    weird = ["", " ", "}" * 5000, "SELECT " + "(" * 500, "INSERT DATA { <a> <b> <c> }", "é" * 1000]
    response = post(service, "/validate", {"question": QUESTION, "candidates": weird})
    assert response.status_code == 200
    assert all(not r["valid"] for r in response.json()["ranking"])


def test_twenty_concurrent_requests_all_succeed_with_the_right_answer(service: str) -> None:
    bodies = [{"question": QUESTION, "candidates": [WRONG, GOOD] if i % 2 else [GOOD, BROKEN]}
              for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda b: post(service, "/validate", b), bodies))
    assert [r.status_code for r in responses] == [200] * 20
    assert all(r.json()["ranking"][0]["sparql"] == GOOD for r in responses)


def test_execution_refused_without_allow_execute_contacts_nobody(canary: Any) -> None:
    with running_service("--endpoint", canary.url, "--no-plugins") as url:
        response = post(url, "/validate", {"question": QUESTION, "candidates": [GOOD],
                                           "options": {"execute": True}})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "execute_not_allowed"
        assert post(url, "/validate", {"question": QUESTION, "candidates": [GOOD]}).status_code == 200
    assert canary.requests == []


def test_execution_runs_only_on_the_operators_endpoint(oxigraph_endpoint: str) -> None:
    with running_service("--allow-execute", "--endpoint", oxigraph_endpoint, "--no-plugins",
                         "--contact", "tests@example.org") as url:
        response = post(url, "/validate", {"question": QUESTION, "candidates": [GOOD],
                                           "options": {"execute": True}})
        assert response.status_code == 200
        execution = response.json()["ranking"][0]["execution"]
        assert execution["endpoint"] == oxigraph_endpoint
        assert execution["status"] in ("ok", "empty")
        # A request has no way to name another endpoint.
        other = post(url, "/validate", {"question": QUESTION, "candidates": [GOOD],
                                        "options": {"execute": True,
                                                    "endpoint": "http://169.254.169.254/"}})
        assert other.status_code == 422


def test_serve_without_the_extra_says_how_to_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    from service_process import child_env

    blocker = tmp_path / "fastapi"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('blocked', name='fastapi')\n")
    env = child_env()
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    done = subprocess.run([sys.executable, "-m", "kgqa_validator.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pip install 'kgqa-validator[service]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
