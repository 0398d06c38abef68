"""The MCP server driven by the ``mcp`` client over stdio, as an agent runtime spawns it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from service_process import child_env

mcp = pytest.importorskip("mcp")

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "fixtures" / "labels.json"
PROPERTIES = ROOT.parent / "shared" / "data" / "wikidata-properties" / "properties.jsonl"
QUESTION = "Who is the author of The Hitchhiker's Guide to the Galaxy?"
GOOD = "SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }"
BROKEN = "SELECT ?a WHERE {\n  wd:Q25338 wdt:P50 ?a\n  FILTER(\n}"


def properties_file(tmp_path: Path) -> Path:
    """The shared Wikidata properties list when present, else a two-line stand-in."""
    if PROPERTIES.is_file():
        return PROPERTIES
    path = tmp_path / "properties.jsonl"
    path.write_text('{"id": "P50", "label": "author", "datatype": "wikibase-item"}\n'
                    '{"id": "P577", "label": "publication date", "datatype": "time"}\n')
    return path


async def session_calls(tmp_path: Path) -> dict[str, Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, env=child_env(), cwd=str(ROOT),
        args=["-m", "kgqa_validator.cli", "mcp", "--labels", str(LABELS),
              "--properties", str(properties_file(tmp_path))])
    out: dict[str, Any] = {}
    with anyio.fail_after(300), (tmp_path / "mcp-stderr.log").open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            out["tools"] = {t.name: t for t in (await session.list_tools()).tools}
            out["check"] = await session.call_tool("check_sparql", {"queries": [GOOD, BROKEN]})
            out["validate"] = await session.call_tool(
                "validate_candidates", {"question": QUESTION, "candidates": [BROKEN, GOOD]})
            out["explain"] = await session.call_tool(
                "explain_ids", {"ids": ["wd:Q25338", "P50", "wdt:P577", "Q0x"]})
            out["bad"] = await session.call_tool("check_sparql", {"queries": "not a list"})
    return out


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("mcp")
    return anyio.run(session_calls, tmp)


def test_tools_have_typed_schemas_and_docstrings(calls: dict[str, Any]) -> None:
    tools = calls["tools"]
    assert set(tools) == {"check_sparql", "validate_candidates", "explain_ids"}
    check = tools["check_sparql"]
    assert check.input_schema["properties"]["queries"]["type"] == "array"
    assert "line" in check.description and "Fix" in check.description
    assert check.output_schema is not None
    assert tools["validate_candidates"].input_schema["required"] == ["question", "candidates"]


def test_check_sparql_points_at_the_error(calls: dict[str, Any]) -> None:
    result = calls["check"]
    assert not result.is_error
    good, broken = result.structured_content["results"]
    assert good["valid"] is True and broken["valid"] is False
    error = next(d for d in broken["diagnostics"] if d["severity"] == "error")
    assert error["line"] in (3, 4) and error["message"]


def test_validate_candidates_ranks_the_good_query_first(calls: dict[str, Any]) -> None:
    ranking = calls["validate"].structured_content["ranking"]
    assert ranking[0]["sparql"] == GOOD and ranking[0]["verdict"] == "accepted"
    assert ranking[1]["valid"] is False


def test_explain_ids_gives_labels_and_datatypes(calls: dict[str, Any]) -> None:
    ids = {i["id"]: i for i in calls["explain"].structured_content["ids"]}
    assert ids["Q25338"]["label"] == "The Hitchhiker's Guide to the Galaxy"
    assert ids["P50"]["datatype"] == "wikibase-item" and ids["P50"]["label"] == "author"
    assert ids["P577"]["datatype"] == "time"
    assert ids["Q0x"]["error"]


def test_wrong_argument_types_are_a_tool_error_not_a_crash(calls: dict[str, Any]) -> None:
    assert calls["bad"].is_error
