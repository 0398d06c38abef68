"""JSON rendering shared by every face of the validator (CLI ``--json``, HTTP service, MCP).

One place decides what a report looks like as JSON, so that ``rerank --json``, ``POST
/validate`` and the MCP tools give the same document for the same input.
"""

from __future__ import annotations

import json
from typing import Any

from kgqa_validator.types import Assessment, Report


def report_to_json(report: Report) -> dict[str, Any]:
    """The ``rerank --json`` document: question, scorer, notes, question diagnostics, ranking."""
    return report.to_dict()


def assessment_to_json(assessment: Assessment) -> dict[str, Any]:
    """The ``check --json`` fields of one checked query (validity, form, diagnostics)."""
    return {
        "valid": assessment.valid,
        "form": assessment.parsed.form.value,
        "diagnostics": [d.to_dict() for d in assessment.diagnostics],
    }


def dumps(data: Any) -> str:
    """``data`` as one line of JSON that can always be written as UTF-8."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    # A lone surrogate (a \ud800 escape in the input, an undecodable input byte) cannot be
    # written as UTF-8: it is written as its JSON escape, which reads back as the same string.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
