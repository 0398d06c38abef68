"""The Ray engine: the same audit on a Ray cluster (``--engine ray``, ``--ray-address``).

An actor pool: each actor builds one :class:`~kgqa_validator.audit.auditor.Auditor` (its own
validator, one parser process, the model loaded once, on its first batch) and audits whole
batches.  The driver reads the dataset, keeps at most two batches per actor in flight (memory
stays bounded however big the input), and hands the rows to the sink in input order, so the
output is the local engine's, byte for byte.  The groups of pass 1 go to the object store
once and are shared by every actor.

On a real cluster every node needs this package installed (``pip install
'kgqa-validator[ray]'``) and the model folder at the same path (the shipped model is inside
the package); the dataset is read by the driver only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from kgqa_validator.audit.auditor import AuditOptions, Auditor
from kgqa_validator.audit.engine_local import Sink, batches
from kgqa_validator.audit.groups import Groups
from kgqa_validator.audit.readers import Record
from kgqa_validator.errors import ConfigurationError

log = logging.getLogger(__name__)

INSTALL_HINT = "--engine ray needs Ray: pip install 'kgqa-validator[ray]' (or pip install 'ray>=2.9')"
IN_FLIGHT_PER_ACTOR = 2


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError(INSTALL_HINT) from exc
    return ray


class AuditActor:
    """One actor of the pool (wrapped by ``ray.remote`` at run time: Ray is optional)."""

    def __init__(self, options: AuditOptions, groups: Groups) -> None:
        self.auditor = Auditor(options, groups)

    def audit(self, batch: list[Record]) -> list[dict[str, Any]]:
        return self.auditor.audit(batch)


def run_ray(options: AuditOptions, groups: Groups, records: Iterable[Record], sink: Sink, *,
            address: str | None = None, actors: int | None = None,
            num_cpus: int | None = None) -> None:
    """Audit ``records`` on Ray; ``sink`` gets each batch's rows in input order.

    ``address`` connects to a running cluster (``auto``, ``ray://host:10001``); without it a
    local cluster starts with ``num_cpus`` CPUs (default: all).  ``actors`` defaults to the
    cluster's CPU count.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
        try:
            ray.init(**kwargs)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ...
            raise ConfigurationError(f"cannot start or reach Ray ({exc})") from exc
        started = True
    try:
        count = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # One core per actor: the actor parses in one worker process and scores on one thread.
        actor_options = replace(options, settings=replace(options.settings, parse_workers=1))
        remote = ray.remote(num_cpus=1)(AuditActor)
        groups_ref = ray.put(groups)
        pool = [remote.remote(actor_options, groups_ref) for _ in range(count)]
        _drive(ray, pool, batches(records, options.batch_size), sink)
    finally:
        if started:
            ray.shutdown()


def _drive(ray: Any, pool: list[Any], work: Iterable[list[Record]], sink: Sink) -> None:
    in_flight: dict[Any, int] = {}  # object ref -> batch number
    done: dict[int, list[dict[str, Any]]] = {}
    next_to_write = 0
    limit = IN_FLIGHT_PER_ACTOR * len(pool)

    def collect(block: bool) -> None:
        nonlocal next_to_write
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=None if block else 0)
        for ref in ready:
            done[in_flight.pop(ref)] = ray.get(ref)
        while next_to_write in done:
            sink(done.pop(next_to_write))
            next_to_write += 1

    for number, batch in enumerate(work):
        # Finished batches waiting for an earlier one count too: memory stays bounded.
        while len(in_flight) + len(done) >= limit:
            collect(block=True)
        # Round robin: batches are of equal size, and each actor runs its calls in order.
        in_flight[pool[number % len(pool)].audit.remote(batch)] = number
        collect(block=False)
    while in_flight:
        collect(block=True)
