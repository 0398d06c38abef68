"""The values that cross hook boundaries: frozen dataclasses and enums only.

Positions (``line``, ``column``) are 1-based and always refer to the text the user gave,
never to a normalised copy.  ``offset`` is the 0-based character offset in that text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a diagnostic is. Only ``ERROR`` makes a candidate invalid."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Form(StrEnum):
    """The query form (``UNKNOWN`` when the text did not parse)."""

    SELECT = "select"
    ASK = "ask"
    CONSTRUCT = "construct"
    DESCRIBE = "describe"
    UPDATE = "update"
    UNKNOWN = "unknown"


class Decision(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Mode(StrEnum):
    """``WIKIDATA`` pre-declares the query service's prefixes and accepts its dialect."""

    WIKIDATA = "wikidata"
    GENERIC = "generic"


class Precision(StrEnum):
    """How the encoder computes (:mod:`kgqa_validator.model.precision` applies it).

    ``AUTO`` is bf16 on a CPU with native bf16, else fp32; ``INT8`` is faster but less accurate.
    """

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    INT8 = "int8"


class ExecutionStatus(StrEnum):
    """What running a candidate gave (:mod:`kgqa_validator.execution.results` says which
    diagnostic each status carries).  ``REFUSED``: never sent (a refusal rule matched)."""

    OK = "ok"
    EMPTY = "empty"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    INVALID_RESPONSE = "invalid_response"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True)
class Span:
    """Where a problem is, in the user's text (1-based line/column, 0-based offsets)."""

    line: int
    column: int
    offset: int
    length: int = 1


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a candidate (or the question).

    ``code`` is stable and documented in the README; ``producer`` names the plugin that
    reported it; ``excerpt`` is the offending text (at most 80 characters).
    """

    code: str
    severity: Severity
    message: str
    span: Span | None = None
    excerpt: str = ""
    producer: str = ""

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "excerpt": self.excerpt,
            "producer": self.producer,
        }


@dataclass(frozen=True)
class Question:
    """The user's question (``text`` may be empty when only queries are checked)."""

    text: str
    language: str = "en"


@dataclass(frozen=True)
class Candidate:
    """One candidate query, as given, with its position in the request."""

    sparql: str
    index: int = 0
    source: str = ""


@dataclass(frozen=True)
class ParsedQuery:
    """What parsing learnt about a candidate; the input of the check hooks.

    ``valid_syntax`` is the strict parser's verdict.  ``structure_known`` says whether the
    fields below it (projection, bound variables, grouping) are known; checks that need them
    must look at it first.  ``diagnostics`` holds what parsing itself found (syntax errors,
    limits, dialect notes).
    """

    text: str
    form: Form
    valid_syntax: bool
    diagnostics: tuple[Diagnostic, ...] = ()
    structure_known: bool = False
    projected: tuple[str, ...] = ()
    bound: frozenset[str] = frozenset()
    select_star: bool = False
    group_by: tuple[str, ...] | None = None
    ungrouped: tuple[str, ...] = ()
    aggregates: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    has_limit: bool = False
    prefixes_used: tuple[str, ...] = ()


@dataclass(frozen=True)
class Score:
    """One scorer's opinion of one candidate; ``producer`` names the scorer.

    ``weight`` is the blend weight a ranking-only score asks for: the consensus scorer sets it
    on a candidate that other candidates repeat (a vote), and the built-in combination uses it
    for the whole request when the gating scorers accept such a candidate; ``None`` asks for
    nothing (``Settings.consensus_weight`` applies)."""

    value: float
    producer: str
    threshold: float | None = None
    detail: str = ""
    weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "producer": self.producer,
            "value": round(self.value, 6),
            "threshold": None if self.threshold is None else round(self.threshold, 6),
            "detail": self.detail,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class Execution:
    """What running a candidate on an endpoint gave."""

    status: ExecutionStatus  # a plain str of the same value is accepted and converted
    endpoint: str
    elapsed_s: float = 0.0
    row_count: int | None = None
    boolean: bool | None = None
    variables: tuple[str, ...] = ()
    rows: tuple[Mapping[str, str], ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    producer: str = ""

    def __post_init__(self) -> None:
        # Executors written against the str-typed field keep working; a value outside the
        # enum is a bug in the executor (ValueError naming it).
        if not isinstance(self.status, ExecutionStatus):
            object.__setattr__(self, "status", ExecutionStatus(self.status))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["rows"] = [dict(r) for r in self.rows]
        data["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return data


@dataclass(frozen=True)
class Assessment:
    """Everything known about one candidate before the decision."""

    candidate: Candidate
    parsed: ParsedQuery
    diagnostics: tuple[Diagnostic, ...]
    scores: tuple[Score, ...] = ()
    score: float | None = None
    threshold: float | None = None
    scored_text: str = ""
    execution: Execution | None = None
    score_detail: str = ""  # the combined score's ``detail`` (how the scores were joined)

    @property
    def valid(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


@dataclass(frozen=True)
class Verdict:
    """The decision on one candidate; ``rank`` is 1 for the best."""

    candidate: Candidate
    decision: Decision
    rank: int
    valid: bool
    score: float | None
    diagnostics: tuple[Diagnostic, ...]
    execution: Execution | None = None
    producer: str = ""
    scores: tuple[Score, ...] = ()  # each scorer's own score; ``score`` is their combination

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sparql": self.candidate.sparql,
            "index": self.candidate.index,
            "rank": self.rank,
            "score": None if self.score is None else round(self.score, 6),
            "scores": [s.to_dict() for s in self.scores],
            "verdict": self.decision.value,
            "valid": self.valid,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }
        if self.execution is not None:
            data["execution"] = self.execution.to_dict()
        return data


@dataclass(frozen=True)
class Report:
    """The answer to one ``Validator.validate`` call: verdicts, best first."""

    question: Question
    verdicts: tuple[Verdict, ...]
    question_diagnostics: tuple[Diagnostic, ...] = ()
    scorer: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def best(self) -> Verdict | None:
        """The top-ranked accepted candidate, if any."""
        for verdict in self.verdicts:
            if verdict.decision is Decision.ACCEPTED:
                return verdict
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question.text,
            "scorer": self.scorer,
            "notes": list(self.notes),
            "question_diagnostics": [d.to_dict() for d in self.question_diagnostics],
            "ranking": [v.to_dict() for v in self.verdicts],
        }


@dataclass(frozen=True)
class IdLabels:
    """What the label sources say about some ids (:meth:`Validator.explain_ids`).

    ``source`` names the endpoint (or data file) that was asked, ``None`` when none was (no
    endpoint label source active, or it is blocked); ``unknown`` are ids it has no triple
    about, ``unchecked`` ids it gave no usable answer for.
    """

    labels: Mapping[str, str]
    unknown: frozenset[str] = frozenset()
    unchecked: frozenset[str] = frozenset()
    source: str | None = None
