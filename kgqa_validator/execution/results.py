"""From an answer to an :class:`~kgqa_validator.types.Execution`: statuses and diagnostics.

Statuses and the diagnostic each one carries (producer ``execute``)::

    ok                a result: rows (SELECT, CONSTRUCT, DESCRIBE) or a boolean (ASK)
    empty             no rows                     -> empty_result       (warning)
    timeout           the query ran out of time   -> endpoint_timeout   (warning)
    rejected          the endpoint refused it     -> endpoint_rejected  (error, its message)
    invalid_response  the answer is unusable      -> invalid_response   (warning)
    refused           never sent (refusal rules)  -> execution_refused  (warning)
    error             the endpoint failed on it   -> endpoint_error     (warning)

A truncated or non-JSON 200, or an HTML page, is ``invalid_response`` and never "0 results":
an unreadable answer says nothing about the query.  ``cached_result`` (info) marks an answer
served from the local cache.

``execution_refused`` is a warning, not an error: the refusal rules are about what this
process may send, not about the query, which stays valid (its verdict is still *rejected*:
an answer that cannot be checked is not accepted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from kgqa_validator.types import Diagnostic, Execution, ExecutionStatus, Form, Severity

PRODUCER = "execute"

_CODES: dict[str, tuple[str, Severity]] = {
    "empty": ("empty_result", Severity.WARNING),
    "timeout": ("endpoint_timeout", Severity.WARNING),
    "rejected": ("endpoint_rejected", Severity.ERROR),
    "invalid_response": ("invalid_response", Severity.WARNING),
    "refused": ("execution_refused", Severity.WARNING),
    "error": ("endpoint_error", Severity.WARNING),
}
CACHEABLE = frozenset({"ok", "empty", "rejected", "timeout"})
"""Statuses that are a verdict on the query, so an identical query may reuse them."""

_MESSAGE_LIMIT = 300


def make_execution(
    status: ExecutionStatus | str,
    endpoint: str,
    *,
    message: str = "",
    elapsed_s: float = 0.0,
    row_count: int | None = None,
    boolean: bool | None = None,
    variables: Sequence[str] = (),
    rows: Sequence[Mapping[str, str]] = (),
) -> Execution:
    """An Execution with the diagnostic its status calls for."""
    diagnostics: tuple[Diagnostic, ...] = ()
    if status in _CODES:
        code, severity = _CODES[status]
        if status == "empty" and not message:
            message = "the query returned no results"
        diagnostics = (Diagnostic(code, severity, short(message), producer=PRODUCER),)
    return Execution(
        status=ExecutionStatus(status), endpoint=endpoint, elapsed_s=round(elapsed_s, 4), row_count=row_count,
        boolean=boolean, variables=tuple(variables), rows=tuple(dict(r) for r in rows),
        diagnostics=diagnostics, producer=PRODUCER)


def short(message: str, limit: int = _MESSAGE_LIMIT) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


# -- SPARQL JSON results ----------------------------------------------------------------------


def _term_text(term: Any) -> str:
    if isinstance(term, dict):
        return str(term.get("value", ""))
    return str(term)


def from_json(body: bytes, form: Form, endpoint: str, max_rows: int, elapsed_s: float) -> Execution:
    """Read SPARQL 1.1 JSON results; anything else is ``invalid_response``."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        hint = " (the query service cuts its answer when the query times out)" \
            if b"TimeoutException" in body else ""
        return make_execution(
            "invalid_response", endpoint, elapsed_s=elapsed_s,
            message=f"the endpoint's JSON answer is truncated or malformed ({_json_error(exc)})"
                    f"{hint}; it says nothing about the query")
    if not isinstance(data, dict):
        return _not_results(endpoint, elapsed_s)
    if form is Form.ASK:
        if not isinstance(data.get("boolean"), bool):
            return _not_results(endpoint, elapsed_s)
        return make_execution("ok", endpoint, elapsed_s=elapsed_s, boolean=data["boolean"])
    head, results = data.get("head"), data.get("results")
    if not isinstance(head, dict) or not isinstance(results, dict) \
            or not isinstance(results.get("bindings"), list):
        return _not_results(endpoint, elapsed_s)
    variables = [str(v) for v in head.get("vars") or []]
    bindings = results["bindings"]
    rows = [{str(k): _term_text(v) for k, v in b.items()} for b in bindings[:max_rows]
            if isinstance(b, dict)]
    status = "ok" if bindings else "empty"
    return make_execution(status, endpoint, elapsed_s=elapsed_s, row_count=len(bindings),
                          variables=variables, rows=rows)


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    return type(exc).__name__


def _not_results(endpoint: str, elapsed_s: float) -> Execution:
    return make_execution("invalid_response", endpoint, elapsed_s=elapsed_s,
                          message="the endpoint answered JSON that is not SPARQL results")


# -- RDF answers (CONSTRUCT, DESCRIBE) ---------------------------------------------------------


def from_rdf(body: bytes, media_type: str, endpoint: str, max_rows: int, elapsed_s: float) -> Execution:
    """Count the triples of a CONSTRUCT/DESCRIBE answer (Turtle or N-Triples)."""
    import pyoxigraph

    rdf_format = pyoxigraph.RdfFormat.from_media_type(media_type)
    if rdf_format is None or rdf_format.supports_datasets or rdf_format.name == "JSON-LD":
        return make_execution("invalid_response", endpoint, elapsed_s=elapsed_s,
                              message=f"the endpoint answered {media_type or 'no content type'}, "
                                      "not an RDF graph in Turtle or N-Triples")
    rows: list[dict[str, str]] = []
    count = 0
    try:
        for triple in pyoxigraph.parse(body, rdf_format):
            if count < max_rows:
                rows.append({"subject": triple.subject.value, "predicate": triple.predicate.value,
                             "object": triple.object.value})
            count += 1
    except SyntaxError as exc:
        return make_execution("invalid_response", endpoint, elapsed_s=elapsed_s,
                              message=f"the endpoint's RDF answer is truncated or malformed ({exc})")
    return make_execution("ok" if count else "empty", endpoint, elapsed_s=elapsed_s,
                          row_count=count, variables=("subject", "predicate", "object"), rows=rows)


# -- error bodies ------------------------------------------------------------------------------

_JAVA_REASON = re.compile(
    r"(?:MalformedQueryException|QueryEvaluationException|ParseException|"
    r"IllegalArgumentException|ExecutionException):\s*(.+)")


def error_message(body: bytes) -> str:
    """The informative part of an endpoint's error body (the query service sends stack traces)."""
    text = body[:20_000].decode("utf-8", errors="replace")
    if looks_like_html(body):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return f"an HTML page{': ' + short(title.group(1), 100) if title else ''}"
    for line in text.splitlines():
        match = _JAVA_REASON.search(line)
        if match:
            # Java chains causes: "X: Y: Z: the reason"; the innermost one is the reason.
            return short(match.group(1).split("Exception: ")[-1])
    for line in text.splitlines():
        if line.strip() and not line.startswith("SPARQL-QUERY:"):
            return short(line)
    return "(no message)"


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head


def execution_to_json(execution: Execution) -> str:
    """The cacheable part of an Execution: what the endpoint said, and its message."""
    data = execution.to_dict()
    cached = {k: data[k] for k in (
        "status", "endpoint", "elapsed_s", "row_count", "boolean", "variables", "rows")}
    cached["message"] = execution.diagnostics[0].message if execution.diagnostics else ""
    return json.dumps(cached, ensure_ascii=False)


def execution_from_json(text: str) -> Execution:
    """Rebuild a cached Execution, marked with a ``cached_result`` note."""
    data = json.loads(text)
    execution = make_execution(
        data["status"], data["endpoint"], message=data.get("message", ""), elapsed_s=data["elapsed_s"],
        row_count=data["row_count"], boolean=data["boolean"], variables=data["variables"],
        rows=data["rows"])
    note = Diagnostic("cached_result", Severity.INFO,
                      "answered from the local cache (an identical query ran recently)",
                      producer=PRODUCER)
    return replace(execution, diagnostics=(*execution.diagnostics, note))
