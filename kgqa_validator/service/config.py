"""What the operator decides when starting the service (requests cannot change any of it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kgqa_validator.config import Settings


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and permissions of one service process.

    ``validator`` holds the pipeline settings (model, labels, endpoint ...).  Execution and
    endpoint label look-ups happen only when ``allow_execute`` is set, and then only against
    ``validator.endpoint`` (or ``validator.data_file``): a request names no endpoint, so it can
    never make the service contact a host the operator did not name.

    ``max_body_bytes`` answers 413 past it; ``max_candidates`` bounds one question's candidates,
    ``max_queries`` one ``/check``, ``max_batch`` the questions of one ``/validate/batch``;
    ``request_timeout_s`` is the most one request may wait and run (then 503 ``timeout``);
    ``body_timeout_s`` the most a client may take to send its body (then 408); ``workers`` how
    many requests run the pipeline at once (the encoder itself is shared and locked).

    Qanary: the question text is fetched from ``<question>/raw`` only on the triplestore's own
    host or a host in ``qanary_fetch_hosts``; ``qanary_pipeline`` is a pipeline to register with
    and ``public_url`` the address it should call this component at.  ``properties_file`` (a
    JSON Lines file of ``{"id", "label", "datatype"}``) gives ``explain_ids`` property datatypes.
    """

    validator: Settings = field(default_factory=Settings)
    host: str = "127.0.0.1"
    port: int = 8000
    allow_execute: bool = False
    max_body_bytes: int = 1 << 20
    max_candidates: int = 100
    max_queries: int = 1000
    max_batch: int = 100
    request_timeout_s: float = 30.0
    body_timeout_s: float = 10.0
    workers: int = 2
    warm_up: bool = True
    no_plugins: bool = False
    block: tuple[str, ...] = ()
    qanary_fetch_hosts: tuple[str, ...] = ()
    qanary_pipeline: str | None = None
    public_url: str | None = None
    component_name: str = "kgqa-validator"
    properties_file: Path | None = None
