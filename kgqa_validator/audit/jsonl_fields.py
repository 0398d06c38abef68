"""``check --jsonl`` and ``rerank --jsonl``: the audit's field mapping and progress bar.

``--question-field`` and ``--sparql-field`` name the input fields that hold the question and
the query (``check``) or the candidates (``rerank``: a list of strings, or one string); the
mapped values are added to the row under the names the command reads (``question``,
``sparql`` / ``candidates``), every input field is kept.  ``check`` lints each query against
its row's ``question`` when there is one (``form_mismatch``) and adds the question's own
diagnostics (``question_template``, ``question_missing`` ...) as warnings.  The progress bar
(stderr when it is a terminal, rate and ETA; ``--quiet`` turns it off) counts input lines.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from kgqa_validator.audit.progress import Progress
from kgqa_validator.types import Assessment, Candidate, Question

Line = tuple[int, "dict[str, Any] | None", str]


def add_field_options(parser: argparse.ArgumentParser, target: str, default: str) -> None:
    """Register ``--question-field``, ``--sparql-field`` and ``--quiet``."""
    parser.add_argument("--question-field", metavar="NAME",
                        help="--jsonl: the field holding the question (default: question)")
    parser.add_argument("--sparql-field", metavar="NAME",
                        help=f"--jsonl: the field holding the {target} (default: {default})")
    parser.add_argument("--quiet", action="store_true", help="--jsonl: no progress bar on stderr")


def count_lines(path: str) -> int | None:
    """Lines of a regular file (a fast binary scan); ``None`` for standard input."""
    if path == "-" or not os.path.isfile(path):
        return None
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            count += chunk.count(b"\n")
    return count


def mapped_lines(lines: Iterator[Line], args: argparse.Namespace, target: str,
                 done: int = 0) -> Iterator[Line]:
    """``lines`` with the mapped fields added, counted on a progress bar."""
    question_field = getattr(args, "question_field", None)
    sparql_field = getattr(args, "sparql_field", None)
    quiet = getattr(args, "quiet", False)
    # Only on a terminal: these commands' stderr is otherwise kept for errors (scripts and
    # tests read it); the audit, a long batch job, also logs its progress to files.
    show = not quiet and sys.stderr.isatty()
    bar = Progress(sys.stderr, count_lines(args.jsonl), f"{args.command} --jsonl", "lines",
                   initial=done) if show else None
    try:
        for number, row, error in lines:
            if row is not None and (question_field or sparql_field):
                row = dict(row)
                if question_field and question_field in row:
                    row["question"] = row[question_field]
                if sparql_field and sparql_field in row:
                    value = row[sparql_field]
                    row[target] = [value] if target == "candidates" and isinstance(value, str) else value
            if bar is not None:
                bar.update(1)
            yield number, row, error
    finally:
        if bar is not None:
            bar.close()


def check_rows(validator: Any, rows: Sequence[dict[str, Any]]) -> list[Assessment]:
    """Check each row's ``sparql`` against its own ``question`` (when it has one)."""
    questions = [Question(r["question"] if isinstance(r.get("question"), str) else "") for r in rows]
    assessments = validator.check_pairs(
        [(q, Candidate(r["sparql"], i)) for i, (q, r) in enumerate(zip(questions, rows, strict=True))])
    out = []
    for question, assessment in zip(questions, assessments, strict=True):
        if question.text:
            extra = validator.check_question(question)
            assessment = replace(assessment, diagnostics=assessment.diagnostics + tuple(extra))
        out.append(assessment)
    return out
