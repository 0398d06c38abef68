"""Request bodies of the HTTP service (pydantic models: validation and the OpenAPI document).

Models are strict: a number where a string belongs is a 422 ``invalid_request``, not a
silent conversion; unknown fields are refused so that a misspelt option is noticed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_QUESTION = "Who is the author of The Hitchhiker's Guide to the Galaxy?"
EXAMPLE_CANDIDATES: list[Any] = [
    "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }",
    "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }",
    "SELECT ?a WHERE { wd:Q25338 wdt:P50 }",
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ValidateOptions(_Strict):
    threshold: float | None = Field(
        default=None, allow_inf_nan=False,
        description="rejection threshold (default: the model's calibrated one)")
    execute: bool = Field(
        default=False, description="run the best candidates on the operator's endpoint "
                           "(403 execute_not_allowed unless the service allows it)")


class ValidateRequest(_Strict):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"question": EXAMPLE_QUESTION, "candidates": EXAMPLE_CANDIDATES}]})

    question: str = Field(description="the user's question")
    candidates: list[str] = Field(description="candidate SPARQL queries, in the order produced")
    options: ValidateOptions = Field(default_factory=lambda: ValidateOptions())


class BatchRequest(_Strict):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"items": [{"question": EXAMPLE_QUESTION, "candidates": EXAMPLE_CANDIDATES[:2]},
                   {"question": "Is Berlin the capital of Germany?",
                    "candidates": ["ASK { wd:Q183 wdt:P36 wd:Q64 }"]}]}]})

    items: list[ValidateRequest] = Field(description="one entry per question")


class CheckRequest(_Strict):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"queries": ["SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }", "SELECT ?a WHERE { ?a }"]}]})

    queries: list[str] = Field(description="SPARQL queries to check (syntax and lints only)")
    question: str = Field(default="", description="optional question: checks the query form against it")


class QanaryMessage(BaseModel):
    """What a Qanary pipeline posts to ``/annotatequestion`` (other fields are echoed back)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_extra={
        "examples": [{"endpoint": "http://127.0.0.1:7200/repositories/qanary",
                      "inGraph": "urn:graph:6d2f1e0a", "outGraph": "urn:graph:6d2f1e0a"}]})

    endpoint: str
    in_graph: str = Field(alias="inGraph")
    out_graph: str = Field(alias="outGraph")
    update_endpoint: str | None = Field(default=None, alias="updateEndpoint")

    def echo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


REPORT_EXAMPLE: dict[str, Any] = {
    "question": EXAMPLE_QUESTION, "scorer": "encoder", "notes": [], "question_diagnostics": [],
    "ranking": [{"sparql": EXAMPLE_CANDIDATES[0], "index": 0, "rank": 1, "score": 0.81,
                 "verdict": "accepted", "valid": True, "diagnostics": []}]}
ERROR_EXAMPLE: dict[str, Any] = {"error": {"code": "too_many_candidates",
                                           "message": "150 candidates; this service takes at most 100"}}
