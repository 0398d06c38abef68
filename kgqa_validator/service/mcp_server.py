"""MCP server: the validator as tools an LLM agent calls to check and repair its SPARQL.

``kgqa-validator mcp`` serves over stdio (default; what desktop agents spawn) or streamable
HTTP (``--transport streamable-http``, 127.0.0.1:8000/mcp by default).  Needs ``mcp>=2``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field

from kgqa_validator.service.config import ServiceSettings

INSTRUCTIONS = (
    "Tools to check candidate SPARQL queries over Wikidata before running them. Call "
    "check_sparql on a query you wrote; fix every diagnostic of severity 'error' (line and "
    "column point into your text) and call it again. With several candidates for a question, "
    "call validate_candidates and use the top-ranked accepted one. Call explain_ids to see "
    "what the Q/P ids in your query mean (label) and what a property's values are (datatype): "
    "a wrong id is the most common reason for a well-formed but wrong query.")

_ID = re.compile(r"^(?:[A-Za-z]+:|https?://www\.wikidata\.org/(?:entity|prop(?:/[a-z-]+)*)/)?"
                 r"([QPL][1-9][0-9]*)$")


class DiagnosticOut(BaseModel):
    code: str = Field(description="stable identifier of the problem (see the README)")
    severity: str = Field(description="error (the query is invalid), warning or info")
    message: str = Field(description="what is wrong and usually how to fix it")
    line: int | None = Field(default=None, description="1-based line in the query text")
    column: int | None = Field(default=None, description="1-based column in the query text")
    excerpt: str = Field(default="", description="the offending text")
    producer: str = ""


class CheckedQuery(BaseModel):
    sparql: str
    valid: bool = Field(description="false when any diagnostic has severity error")
    form: str = Field(description="select, ask, construct, describe, update or unknown")
    diagnostics: list[DiagnosticOut]


class CheckResult(BaseModel):
    results: list[CheckedQuery] = Field(description="one entry per query, in order")


class RankedCandidate(BaseModel):
    sparql: str
    index: int = Field(description="position in the candidates you gave (0-based)")
    rank: int = Field(description="1 = best")
    score: float | None = Field(description="the combined score: the encoder's similarity of question "
                                "and query, blended with the agreement among the candidates "
                                "(higher is better)")
    verdict: str = Field(description="accepted or rejected")
    valid: bool
    diagnostics: list[DiagnosticOut]


class ValidationReport(BaseModel):
    question: str
    scorer: str | None
    notes: list[str]
    question_diagnostics: list[DiagnosticOut]
    ranking: list[RankedCandidate] = Field(description="best first")


class IdInfo(BaseModel):
    id: str = Field(description="the id as normalised (Q42, P31)")
    label: str | None = Field(description="English label, when a label source knows it")
    datatype: str | None = Field(description="a property's value type (wikibase-item, quantity, "
                                             "time, string, external-id ...), when known")
    error: str | None = Field(default=None, description="why the input is not a Wikidata id")


class ExplainResult(BaseModel):
    ids: list[IdInfo]


def load_properties(path: Path | None) -> dict[str, tuple[str | None, str | None]]:
    """``{"P31": (label, datatype)}`` from a JSON Lines file of ``{"id", "label", "datatype"}``."""
    import json

    from kgqa_validator.errors import DataFormatError

    if path is None:
        return {}
    found: dict[str, tuple[str | None, str | None]] = {}
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    row = json.loads(line)
                    found[str(row["id"])] = (row.get("label"), row.get("datatype"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFormatError(f"cannot read the properties file {path}: {exc}") from exc
    return found


def build_server(service: ServiceSettings) -> Any:
    """The MCP server with its three tools over one shared validator."""
    from mcp.server.mcpserver import MCPServer

    from kgqa_validator import __version__
    from kgqa_validator.service.engine import Engine

    engine = Engine(service)
    properties = load_properties(service.properties_file)
    server = MCPServer("kgqa-validator", version=__version__, instructions=INSTRUCTIONS)

    @server.tool()
    async def check_sparql(queries: list[str], question: str = "") -> CheckResult:
        """Check SPARQL queries for syntax errors and common mistakes, without running them.

        Args:
            queries: the queries to check (Wikidata prefixes wd:, wdt:, p:, ps:, pq:, rdfs: ...
                are pre-declared).
            question: optional natural-language question; when given, the query form is
                checked against it (a yes/no question wants ASK, "how many" wants COUNT).

        Returns one result per query: ``valid`` and ``diagnostics``, each with a stable
        ``code``, a ``message`` saying what to change, and the 1-based ``line``/``column``
        of the problem in the query text.  Fix the errors and check again.
        """
        rows = await anyio.to_thread.run_sync(engine.check, queries, question)
        return CheckResult.model_validate({"results": rows})

    @server.tool()
    async def validate_candidates(question: str, candidates: list[str]) -> ValidationReport:
        """Rank candidate SPARQL queries for a question and reject the bad ones.

        Args:
            question: the user's question in natural language.
            candidates: candidate queries for it (e.g. several attempts or samples).

        Returns the ranking, best first: per candidate its ``score`` (how well the query
        matches the question), ``verdict`` (accepted/rejected), ``valid`` and
        ``diagnostics``.  Use the first accepted candidate; if none is accepted, repair
        the best one using its diagnostics and call again.
        """
        engine.check_candidates(len(candidates))
        report = await anyio.to_thread.run_sync(engine.validate, question, candidates)
        return ValidationReport.model_validate(report)

    @server.tool()
    async def explain_ids(ids: list[str]) -> ExplainResult:
        """Say what Wikidata ids mean: the English label and, for properties, the datatype.

        Args:
            ids: ids as they appear in a query: ``Q42``, ``P31``, ``wd:Q42``, ``wdt:P31`` or a
                full entity IRI.

        Use it to verify that each id in a query is the entity or property you meant, and
        that a property's datatype fits how the query uses its value (a ``time`` value needs
        YEAR() or a date comparison, a ``wikibase-item`` value is an entity, not a string).
        A null label means no configured label source knows the id.
        """
        wanted: list[str] = []
        errors: dict[str, str] = {}
        for raw in ids:
            match = _ID.match(raw.strip().strip("<>"))
            if match is None:
                errors[raw] = "not a Wikidata id (Q42, P31, wd:Q42 or an entity IRI)"
            else:
                wanted.append(match.group(1))
        labels = await anyio.to_thread.run_sync(engine.validator.labels, list(dict.fromkeys(wanted)))
        out = [IdInfo(id=raw, label=None, datatype=None, error=message)
               for raw, message in errors.items()]
        for id_ in dict.fromkeys(wanted):
            label, datatype = properties.get(id_, (None, None))
            out.append(IdInfo(id=id_, label=labels.get(id_) or label, datatype=datatype))
        return ExplainResult(ids=out)

    server.engine = engine  # type: ignore[attr-defined]
    return server


def run(service: ServiceSettings, transport: str = "stdio") -> None:
    server = build_server(service)
    if service.warm_up:
        server.engine.warm_up()
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=service.host, port=service.port)
