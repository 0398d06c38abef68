"""Which executor runs a query for some settings, and the process's shared executors.

Executors are shared per configuration for the whole process (the embedded worker loads its
file once; the HTTP rules are per endpoint host anyway) and closed at exit.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError
from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.cache import cache_dir_for

EXECUTORS = ("sparqlwrapper", "embedded")

_EXECUTORS: dict[tuple[object, ...], Executor] = {}
_LOCK = threading.Lock()


def executor_kind(settings: Settings) -> str:
    """``"sparqlwrapper"`` or ``"embedded"`` for these settings (ConfigurationError if neither)."""
    kind = settings.executor or ("embedded" if settings.data_file is not None else "sparqlwrapper")
    if kind not in EXECUTORS:
        raise ConfigurationError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    if kind == "embedded" and settings.data_file is None:
        raise ConfigurationError("the embedded executor needs a data file (--data FILE.ttl)")
    return kind


def endpoint_key(settings: Settings) -> str:
    """What answers the queries, as caches and reports name it."""
    if executor_kind(settings) == "embedded":
        assert settings.data_file is not None
        path = Path(settings.data_file).expanduser().resolve()
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = 0
        return f"embedded:{path}@{stamp}"  # an edited file is another graph
    return settings.endpoint


def _build(settings: Settings) -> Executor:
    if executor_kind(settings) == "embedded":
        from kgqa_validator.execution.embedded import EmbeddedExecutor

        assert settings.data_file is not None
        return EmbeddedExecutor(Path(settings.data_file).expanduser(), timeout_s=settings.timeout_s)
    from kgqa_validator.execution.http_executor import HttpExecutor

    return HttpExecutor(
        settings.endpoint, contact=settings.contact, timeout_s=settings.timeout_s,
        cache_dir=cache_dir_for(settings.cache_dir), cache_ttl_s=settings.cache_ttl_s,
        max_in_flight=settings.max_in_flight)


def check_settings(settings: Settings) -> None:
    """Raise ConfigurationError now for what would fail at the first execution.

    Cheap (no request, no process): the CLI calls it before loading the model.
    """
    kind = executor_kind(settings)
    if kind == "embedded":
        from kgqa_validator.execution.embedded import data_format

        assert settings.data_file is not None
        path = Path(settings.data_file).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"data file {path} does not exist")
        data_format(path)
    else:
        from kgqa_validator.execution.politeness import check_endpoint_url, user_agent

        check_endpoint_url(settings.endpoint)
        user_agent(settings.endpoint, settings.contact)
    if settings.timeout_s <= 0:
        raise ConfigurationError(f"timeout must be positive, not {settings.timeout_s}")


def executor_for(settings: Settings) -> Executor:
    """The process's executor for these settings (built on first use)."""
    key = (executor_kind(settings), endpoint_key(settings), settings.contact, settings.timeout_s,
           settings.cache_dir, settings.cache_ttl_s, settings.max_in_flight)
    with _LOCK:
        executor = _EXECUTORS.get(key)
        if executor is None:
            executor = _build(settings)
            _EXECUTORS[key] = executor
        return executor


@atexit.register
def close_executors() -> None:
    """Stop embedded workers (tests call it too)."""
    with _LOCK:
        for executor in _EXECUTORS.values():
            executor.close()
        _EXECUTORS.clear()
