"""Pass 2: one batch of records in, one output row per record out (the same code on every engine).

A batch is checked (all its queries parsed in one call, so the parser worker processes share
it; each query linted against its own question), then scored (all questions, paraphrases and
queries of the batch in one encoder call) and, with ``--execute``, run.  The rows depend only
on the batch's records and the dataset's groups, so the local engine, the Ray engine and a
resumed run write the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kgqa_validator.audit import reasons as R
from kgqa_validator.audit.groups import Groups
from kgqa_validator.audit.readers import Record
from kgqa_validator.config import Settings
from kgqa_validator.model.verbalise import verbalise
from kgqa_validator.types import Assessment, Candidate, Diagnostic, Execution, Question, Severity

log = logging.getLogger(__name__)

SCORE_DIGITS = 6


@dataclass(frozen=True)
class AuditOptions:
    """What one audit runs with; it travels to Ray actors, so it is plain data."""

    settings: Settings = field(default_factory=Settings)
    autoload: bool | None = None
    block: tuple[str, ...] = ()
    score: bool = True
    batch_size: int = 256


@dataclass
class Checked:
    """A batch after parsing and linting (what the scoring stage needs)."""

    records: Sequence[Record]
    assessments: dict[int, Assessment]  # by record index; unreadable records have none
    question_diagnostics: dict[int, tuple[Diagnostic, ...]]


class Auditor:
    """Audits batches of records; holds one validator and (lazily) one model."""

    def __init__(self, options: AuditOptions, groups: Groups) -> None:
        from kgqa_validator.validator import Validator

        self.options = options
        self.groups = groups
        self.validator = Validator(options.settings, autoload=options.autoload, block=options.block)
        self.scorer = None
        if options.score and _scorer_available():
            from kgqa_validator.audit.scorer import BatchScorer

            s = options.settings
            self.scorer = BatchScorer(s.model_path, s.precision, s.threshold)

    def audit(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        return self.finish_safely(records, self.check_safely(records))

    def check_safely(self, records: Sequence[Record]) -> Checked | Exception:
        """:meth:`check`, or the exception it raised (handled by :meth:`finish_safely`)."""
        try:
            return self.check(records)
        except Exception as exc:  # a plugin's bug must not end the run
            return exc

    def finish_safely(self, records: Sequence[Record],
                      checked: Checked | Exception) -> list[dict[str, Any]]:
        """Rows for the batch; when the batch fails as a whole, each record is audited alone
        and a record that still fails gets the ``audit_failed`` reason: one bad record never
        ends the run."""
        if not isinstance(checked, Exception):
            try:
                return self.finish(checked)
            except Exception as exc:
                checked = exc
        log.warning("batch at record %d failed (%s): auditing its records one by one",
                    records[0].index if records else -1, checked)
        rows = []
        for record in records:
            try:
                rows.extend(self.finish(self.check([record])))
            except Exception as exc:
                rows.append({"id": record.id, "index": record.index, "reasons": [R.AUDIT_FAILED],
                             "error": f"{type(exc).__name__}: {exc}"[:300],
                             "question": record.question, "sparql": record.sparql})
        return rows

    def check(self, records: Sequence[Record]) -> Checked:
        readable = [r for r in records if not r.error and r.sparql is not None]
        questions = {r.index: Question(r.question or "") for r in readable}
        pairs = [(questions[r.index], Candidate(r.sparql or "", r.index)) for r in readable]
        assessments = self.validator.check_pairs(pairs) if pairs else []
        question_diagnostics = {r.index: self.validator.check_question(Question(r.question))
                                for r in records if r.question and not r.error}
        return Checked(records, {r.index: a for r, a in zip(readable, assessments, strict=True)},
                       question_diagnostics)

    def finish(self, checked: Checked) -> list[dict[str, Any]]:
        scores, paraphrase_scores = self._scores(checked)
        rows = []
        for record in checked.records:
            assessment = checked.assessments.get(record.index)
            execution = None
            if assessment is not None and assessment.valid and self.options.settings.execute:
                assessment = self._execute(assessment)
                execution = assessment.execution
            rows.append(self._row(record, assessment, checked.question_diagnostics.get(record.index, ()),
                                  scores.get(record.index), paraphrase_scores.get(record.index),
                                  execution))
        return rows

    # -- stages ----------------------------------------------------------------------------

    def _scores(self, checked: Checked) -> tuple[dict[int, float], dict[int, float]]:
        if self.scorer is None:
            return {}, {}
        scorable = [(r, a) for r in checked.records
                    if (a := checked.assessments.get(r.index)) is not None and a.valid]
        ids = list(dict.fromkeys(i for _, a in scorable for i in a.parsed.ids))
        labels = self.validator.labels(ids) if ids else {}
        jobs: list[tuple[int, bool, str, str]] = []
        for record, assessment in scorable:
            text = verbalise(assessment.candidate.sparql, labels) if labels \
                else assessment.candidate.sparql
            if not R.is_missing(record.question):
                jobs.append((record.index, False, record.question or "", text))
            if not R.is_missing(record.paraphrase) and not _same_text(record.paraphrase,
                                                                         record.question):
                jobs.append((record.index, True, record.paraphrase or "", text))
        values = self.scorer.similarities((q, t) for _, _, q, t in jobs)
        scores: dict[int, float] = {}
        paraphrase_scores: dict[int, float] = {}
        for (index, is_paraphrase, _, _), value in zip(jobs, values, strict=True):
            (paraphrase_scores if is_paraphrase else scores)[index] = round(value, SCORE_DIGITS)
        return scores, paraphrase_scores

    def _execute(self, assessment: Assessment) -> Assessment:
        # Every valid query is run, whatever its score: execute() runs the promising ones,
        # and an unscored assessment is promising.
        (executed,) = self.validator.execute([replace(assessment, score=None)], limit=1)
        return executed

    # -- the row ---------------------------------------------------------------------------

    def _row(self, record: Record, assessment: Assessment | None,
             question_diagnostics: Iterable[Diagnostic], score: float | None,
             paraphrase_score: float | None, execution: Execution | None) -> dict[str, Any]:
        found: list[str] = []
        row: dict[str, Any] = {"id": record.id, "index": record.index}
        if record.error or assessment is None:
            found.append(R.UNREADABLE)
            row["error"] = record.error or "no query"
        diagnostics = list(assessment.diagnostics) if assessment else []
        for d in diagnostics:
            if d.severity is Severity.INFO or d.code == "cached_result":
                continue
            if d.code in R.EXECUTION_ERROR_CODES:
                found.append(R.EXECUTION_ERROR)
            else:
                found.append(d.code)  # empty_result keeps its name
        question_diagnostics = list(question_diagnostics)
        for d in question_diagnostics:
            if d.severity is not Severity.INFO:
                found.append(R.QUESTION_CODES.get(d.code, d.code))
        if R.is_missing(record.question) and not record.error:
            found.append(R.QUESTION_MISSING)
        if record.paraphrase is not None:
            if R.is_missing(record.paraphrase):
                found.append(R.PARAPHRASE_MISSING)
            elif _same_text(record.paraphrase, record.question):
                found.append(R.PARAPHRASE_IDENTICAL)
        threshold = self.scorer.threshold if self.scorer is not None else None
        if threshold is not None and score is not None and score < threshold:
            found.append(R.LOW_SCORE)
        if threshold is not None and paraphrase_score is not None and paraphrase_score < threshold:
            found.append(R.PARAPHRASE_MISMATCH)
        group_info = self.groups.of(record)
        found.extend(group_info)
        answer = _answer_quality(record, execution)
        if answer is not None and answer["f1"] < 1.0:
            found.append(R.ANSWER_MISMATCH)

        row["reasons"] = R.ordered(found)
        row["score"] = score
        row["paraphrase_score"] = paraphrase_score
        row["threshold"] = threshold
        row["valid"] = assessment.valid if assessment is not None else None
        row["form"] = assessment.parsed.form.value if assessment is not None else None
        row["question"] = record.question
        row["paraphrase"] = record.paraphrase
        row["sparql"] = record.sparql
        row["diagnostics"] = [d.to_dict() for d in diagnostics]
        row["question_diagnostics"] = [d.to_dict() for d in question_diagnostics]
        if group_info:
            row["groups"] = group_info
        if execution is not None:
            row["execution"] = {"status": execution.status, "rows": execution.row_count,
                                "boolean": execution.boolean}
        if answer is not None:
            row["answer"] = answer
        return row


def _scorer_available() -> bool:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        log.warning("sentence-transformers is not installed: the audit runs without scores")
        return False
    return True


def _same_text(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and R.normalise_question(a) == R.normalise_question(b)


def _answer_quality(record: Record, execution: Execution | None) -> dict[str, float] | None:
    """Set precision/recall/F1 of the answers against the gold answers (QALD)."""
    if execution is None or execution.status not in ("ok", "empty"):
        return None
    if record.gold_boolean is not None:
        same = float(execution.boolean is record.gold_boolean)
        return {"precision": same, "recall": same, "f1": same}
    if record.gold is None:
        return None
    got = {v for row in execution.rows for v in row.values()}
    gold = set(record.gold)
    if not got and not gold:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    hit = len(got & gold)
    precision = hit / len(got) if got else 0.0
    recall = hit / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
