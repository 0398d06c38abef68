"""The pipeline: the only code that calls ``pm.hook``.

Example:
    >>> from kgqa_validator import Validator
    >>> validator = Validator(autoload=False)
    >>> report = validator.validate(
    ...     "Who is the author of The Hitchhiker's Guide to the Galaxy?",
    ...     ["SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }", "SELECT ?a WHERE { wd:Q25338 wdt:P50 }"],
    ... )
    >>> [v.valid for v in report.verdicts]
    [True, False]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from kgqa_validator.config import Settings
from kgqa_validator.diagnostics import diagnostic
from kgqa_validator.errors import ConfigurationError, InvalidInputError
from kgqa_validator.plugins import PluginManager, get_plugin_manager
from kgqa_validator.properties import PropertyTable, shipped_properties
from kgqa_validator.scoring_text import ids_in, scoring_text
from kgqa_validator.types import (
    Assessment,
    Candidate,
    Decision,
    Diagnostic,
    Form,
    IdLabels,
    Mode,
    ParsedQuery,
    Question,
    Report,
    Score,
    Severity,
)

log = logging.getLogger(__name__)

NO_SCORER_NOTE = "no scorer available: valid candidates ranked before invalid ones, in input order"


def _flatten(results: Iterable[Sequence[Diagnostic] | None]) -> tuple[Diagnostic, ...]:
    return tuple(d for result in results if result for d in result)


class Validator:
    """Validate, score, rank and optionally execute candidate queries for a question.

    Args:
        settings: a :class:`~kgqa_validator.config.Settings`; keyword ``overrides`` replace
            its fields (``Validator(threshold=0.5, labels_files=(path,))``).
        plugin_manager: a ready manager (tests pass their own); otherwise one is built with
            ``autoload``, ``block`` and ``strict`` (see :func:`get_plugin_manager`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        plugin_manager: PluginManager | None = None,
        autoload: bool | None = None,
        block: Iterable[str] = (),
        strict: bool | None = None,
        **overrides: Any,
    ) -> None:
        settings = settings or Settings()
        self.settings = replace(settings, **overrides) if overrides else settings
        self.pm = plugin_manager or get_plugin_manager(autoload=autoload, block=block, strict=strict)
        extra: dict[str, str] = {}
        for found in reversed(self.pm.hook.kgqa_prefixes(mode=self.settings.mode)):
            extra.update(found or {})
        if extra:
            merged = {**extra, **self.settings.prefixes}
            self.settings = replace(self.settings, prefixes=merged)

    # -- stages ----------------------------------------------------------------------------

    def parse(self, candidates: Sequence[Candidate]) -> list[ParsedQuery]:
        parsed = self.pm.hook.kgqa_parse(candidates=candidates, settings=self.settings)
        if parsed is None or len(parsed) != len(candidates):
            raise ConfigurationError(
                "no kgqa_parse implementation returned a result for every candidate "
                "(is the built-in parse plugin blocked?)")
        return list(parsed)

    def check_candidates(self, question: Question, candidates: Sequence[Candidate]) -> list[Assessment]:
        """Parse and lint: one :class:`Assessment` (no scores) per candidate."""
        assessments = []
        for candidate, parsed in zip(candidates, self.parse(candidates), strict=True):
            lints = self.pm.hook.kgqa_check(
                question=question, candidate=candidate, parsed=parsed, settings=self.settings)
            assessments.append(Assessment(candidate, parsed, parsed.diagnostics + _flatten(lints)))
        return assessments

    def check_pairs(self, pairs: Sequence[tuple[Question, Candidate]]) -> list[Assessment]:
        """Parse and lint many (question, candidate) pairs, each with its own question; all
        candidates are parsed in one call, so the parser workers share the work."""
        parsed = self.parse([c for _, c in pairs])
        assessments = []
        for (question, candidate), result in zip(pairs, parsed, strict=True):
            lints = self.pm.hook.kgqa_check(
                question=question, candidate=candidate, parsed=result, settings=self.settings)
            assessments.append(Assessment(candidate, result, result.diagnostics + _flatten(lints)))
        return assessments

    def check_question(self, question: Question) -> tuple[Diagnostic, ...]:
        """Diagnostics of the question alone (``kgqa_check_question``)."""
        return _flatten(self.pm.hook.kgqa_check_question(question=question, settings=self.settings))

    def check(self, sparql: Sequence[str], question: str = "") -> list[Assessment]:
        """Validity and diagnostics of each query, without scoring.

        Raises:
            InvalidInputError: ``question`` is not a ``str`` or ``sparql`` is not a sequence
                of candidates (a candidate that is not a ``str`` gets an ``invalid_input``
                diagnostic instead).
        """
        candidates, problems = _candidates(sparql)
        return _flag_inputs(self.check_candidates(Question(_question(question)), candidates),
                            problems)

    def labels(self, ids: Sequence[str]) -> dict[str, str]:
        """Labels from every label source; an earlier-called source wins."""
        if not ids:
            return {}
        merged: dict[str, str] = {}
        for found in self.pm.hook.kgqa_resolve_labels(ids=list(ids), settings=self.settings):
            for key, value in (found or {}).items():
                merged.setdefault(key, value)
        return merged

    def property_table(self) -> PropertyTable | None:
        """The shipped property table (labels and datatypes of every Wikidata property), or
        ``None`` when ``settings.property_table`` is off or the mode is not Wikidata."""
        if not self.settings.property_table or self.settings.mode is not Mode.WIKIDATA:
            return None
        return shipped_properties()
    def explain_ids(self, ids: Sequence[str]) -> IdLabels:
        """Labels of ``ids`` from every label source and, where the endpoint label source is
        registered and active (see :mod:`kgqa_validator.builtin.endpoint_labels`), whether the
        endpoint knows each id.  A blocked ``endpoint_labels`` plugin is not asked."""
        labels = self.labels(ids)
        if not self._endpoint_labels_active():
            return IdLabels(labels)
        from kgqa_validator.builtin.endpoint_labels import lookup
        from kgqa_validator.execution import executor_for

        found = lookup(ids, self.settings)  # answered from the cache self.labels just filled
        return IdLabels(labels, found.unknown, found.unchecked, executor_for(self.settings).name)

    def check_setup(self) -> None:
        """Raise now, cheaply, what would fail at the first candidate: an unreadable labels
        file, or an endpoint that cannot be used (no request is sent, no model loaded)."""
        from kgqa_validator.label_files import load_labels

        for path in self.settings.labels_files:
            load_labels(path)
        if self.settings.execute or self._endpoint_labels_active():
            from kgqa_validator.execution import check_settings

            check_settings(self.settings)

    def _endpoint_labels_active(self) -> bool:
        if self.pm.get_plugin("endpoint_labels") is None:
            return False
        from kgqa_validator.builtin.endpoint_labels import active

        return active(self.settings)

    def score(self, question: Question, assessments: Sequence[Assessment]) -> list[Assessment]:
        valid = [a for a in assessments if a.valid]
        if not valid or not question.text.strip():
            return list(assessments)
        prefixes = self.settings.prefixes
        ids = list(dict.fromkeys(i for a in valid for i in ids_in(a.candidate.sparql, prefixes)))
        labels: Mapping[str, str] = self.labels(ids)
        # What a scorer reads depends on what the query means, not on how it is spelled.
        texts = [scoring_text(a.candidate.sparql, labels, prefixes) for a in valid]
        results = [r for r in self.pm.hook.kgqa_score(
            question=question, candidates=[a.candidate for a in valid], texts=texts,
            settings=self.settings) if r is not None]
        if not results:
            return list(assessments)
        combined: Sequence[Score] | None = self.pm.hook.kgqa_combine_scores(
            scores=results, settings=self.settings)
        if combined is None:
            return list(assessments)
        by_index = {
            a.candidate.index: replace(
                a, scores=tuple(r[k] for r in results), score=combined[k].value,
                threshold=combined[k].threshold, scored_text=texts[k],
                score_detail=combined[k].detail)
            for k, a in enumerate(valid)
        }
        return [by_index.get(a.candidate.index, a) for a in assessments]

    def execute(self, assessments: Sequence[Assessment], limit: int = 3) -> list[Assessment]:
        """Run the best ``limit`` valid candidates above their threshold on the endpoint."""
        def promising(a: Assessment) -> bool:
            return a.valid and (a.score is None or a.threshold is None or a.score >= a.threshold)

        chosen = sorted((a for a in assessments if promising(a)),
                        key=lambda a: (-(a.score if a.score is not None else 0.0), a.candidate.index))
        chosen_ids = {a.candidate.index for a in chosen[:limit]}
        out = []
        for a in assessments:
            if a.candidate.index in chosen_ids:
                execution = self.pm.hook.kgqa_execute(
                    candidate=a.candidate, parsed=a.parsed, settings=self.settings)
                if execution is not None:
                    a = replace(a, execution=execution,
                                diagnostics=a.diagnostics + execution.diagnostics)
            out.append(a)
        return out

    # -- the whole pipeline ----------------------------------------------------------------

    def validate(self, question: str, candidates: Sequence[str], *,
                 execute: bool | None = None) -> Report:
        """Check, score, decide (and, if asked, execute) candidates for ``question``.

        Raises:
            InvalidInputError: as :meth:`check`, and for more than
                ``settings.max_candidates`` candidates (each is parsed and embedded: an
                unbounded list is unbounded work and memory).
        """
        q = Question(_question(question))
        items, problems = _candidates(candidates, self.settings.max_candidates)
        question_diagnostics = _flatten(
            self.pm.hook.kgqa_check_question(question=q, settings=self.settings))
        assessments = self.score(q, _flag_inputs(self.check_candidates(q, items), problems))
        if execute if execute is not None else self.settings.execute:
            assessments = self.execute(assessments)
        verdicts = self.pm.hook.kgqa_decide(question=q, assessments=assessments,
                                            settings=self.settings)
        # Each verdict shows every scorer's own score, whichever plugin decided.
        per_scorer = {a.candidate.index: a.scores for a in assessments}
        verdicts = [v if v.scores else replace(v, scores=per_scorer.get(v.candidate.index, ()))
                    for v in verdicts]
        scored = [a for a in assessments if a.score is not None]
        notes: tuple[str, ...] = ()
        scorer = None
        if scored:
            scorer = scored[0].scores[0].producer if len(scored[0].scores) == 1 else "combined"
        elif q.text.strip() and any(a.valid for a in assessments):
            notes = (NO_SCORER_NOTE,)
        return Report(q, tuple(verdicts), question_diagnostics, scorer, notes)

    def rerank(self, question: str, candidates: Sequence[str], **kwargs: Any) -> list[str]:
        """Accepted candidates' SPARQL, best first."""
        report = self.validate(question, candidates, **kwargs)
        return [v.candidate.sparql for v in report.verdicts if v.decision is Decision.ACCEPTED]


def _question(question: object) -> str:
    if question is None:
        return ""
    if not isinstance(question, str):
        raise InvalidInputError(f"the question must be a str, not {type(question).__name__}")
    return question


def _candidates(sparql: object, limit: int | None = None) -> tuple[list[Candidate], dict[int, Diagnostic]]:
    """Candidates, and an ``invalid_input`` diagnostic for each one that is not a ``str``
    (it is checked as an empty query, so that one bad item does not cost the others);
    :class:`InvalidInputError` past ``limit`` candidates (read no further than that)."""
    if isinstance(sparql, (str, bytes)) or not isinstance(sparql, Iterable):
        raise InvalidInputError(
            f"candidates must be a list of query strings, not {type(sparql).__name__}")
    candidates: list[Candidate] = []
    problems: dict[int, Diagnostic] = {}
    for i, text in enumerate(sparql):
        if limit is not None and i >= limit:
            raise InvalidInputError(f"more than {limit:,} candidates for one question "
                                    "(Settings.max_candidates)")
        if isinstance(text, str):
            candidates.append(Candidate(text, i))
            continue
        hint = " (decode bytes to str first)" if isinstance(text, (bytes, bytearray)) else ""
        problems[i] = diagnostic("invalid_input", Severity.ERROR,
                                 f"candidate {i} is {type(text).__name__}, not str{hint}",
                                 producer="validator")
        candidates.append(Candidate("", i))
    return candidates, problems


def _flag_inputs(assessments: list[Assessment], problems: Mapping[int, Diagnostic]) -> list[Assessment]:
    if not problems:
        return assessments
    out = []
    for a in assessments:
        problem = problems.get(a.candidate.index)
        if problem is not None:
            a = Assessment(a.candidate, ParsedQuery("", Form.UNKNOWN, False, (problem,)), (problem,))
        out.append(a)
    return out
