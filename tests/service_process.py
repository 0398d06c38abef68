"""Starting ``kgqa-validator serve`` for a test: a real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent



def child_env() -> dict[str, str]:
    """The test's environment, this checkout first on the path, offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


@contextmanager
def running_service(*args: str, startup_s: float = 120.0,
                    command: Sequence[str] | None = None,
                    env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Base URL of a service started with ``args``; stopped (SIGTERM, then kill) afterwards.

    ``command`` replaces ``python -m kgqa_validator.cli serve`` (the port is appended as
    ``--port N``); ``env`` adds variables to the child's environment."""
    port = free_port()
    log = tempfile.TemporaryFile()  # a pipe nobody reads could fill and stall the server
    argv = list(command or [sys.executable, "-m", "kgqa_validator.cli", "serve"])
    process = subprocess.Popen(
        [*argv, "--port", str(port), *args],
        env={**child_env(), **(env or {})}, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError("the service exited: " + log.read().decode()[-2000:])
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
