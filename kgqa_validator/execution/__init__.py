"""Running candidates on an endpoint or a local RDF file, safely and politely.

Two executors:

``sparqlwrapper`` (:mod:`.http_executor`, with :mod:`.politeness` and :mod:`.transport`)
    any http(s) SPARQL endpoint, the Wikidata query service by default; retries, waits,
    cache, 403 stop and one request at a time.
``embedded`` (:mod:`.embedded`)
    pyoxigraph over a local RDF file (``settings.data_file``), in a worker process with a
    time limit.

Which one: ``settings.executor`` when given; otherwise ``embedded`` when a data file is set,
else ``sparqlwrapper``.  Both refuse, before any request, what :mod:`.refusal` forbids, and
report what they got as an :class:`~kgqa_validator.types.Execution`
(:mod:`.results` lists statuses and diagnostics).  Infrastructure failures raise
:class:`~kgqa_validator.errors.EndpointError` (:class:`~kgqa_validator.errors.EndpointBlocked`
after a 403) or :class:`~kgqa_validator.errors.ConfigurationError`.

Executors are shared per configuration for the whole process (the embedded worker loads its
file once; the HTTP rules are per endpoint host anyway) and closed at exit (:mod:`.pool`).
"""

from kgqa_validator.execution.base import Executor
from kgqa_validator.execution.pool import (
    EXECUTORS,
    check_settings,
    close_executors,
    endpoint_key,
    executor_for,
    executor_kind,
)

__all__ = ["EXECUTORS", "Executor", "check_settings", "close_executors", "endpoint_key",
           "executor_for", "executor_kind"]
