"""Every hook, called through a fresh plugin manager: a test plugin implements it and the
Validator must use what it returns.

Scoring hooks use a fake scorer, so no model is loaded: the built-in ``scoring`` plugin is
blocked wherever the real encoder is not the point.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kgqa_validator import (
    Assessment,
    Candidate,
    Decision,
    Diagnostic,
    Execution,
    Form,
    Mode,
    ParsedQuery,
    Question,
    Score,
    Settings,
    Severity,
    Validator,
    Verdict,
    get_plugin_manager,
    hookimpl,
    hookspecs,
)
from kgqa_validator.errors import ConfigurationError
from kgqa_validator.plugins import PluginManager
from kgqa_validator.properties import shipped_properties
from kgqa_validator.scoring_text import scoring_text
from kgqa_validator.validator import NO_SCORER_NOTE

QUERY = "SELECT ?x WHERE { wd:Q25338 wdt:P50 ?x }"
BROKEN = "SELECT ?x WHERE { wd:Q25338 wdt:P50 }"
NO_MODEL = ["scoring", "consensus", "execute", "endpoint_labels"]  # no built-in scorer


def manager(*plugins: object, block: Sequence[str] = NO_MODEL) -> PluginManager:
    pm = get_plugin_manager(autoload=False, block=block)
    for plugin in plugins:
        pm.register(plugin)
    return pm


class FakeScorer:
    """Scores a candidate by how many of the question's words its text contains."""

    def __init__(self, name: str = "fake", threshold: float | None = 0.5) -> None:
        self.name = name
        self.threshold = threshold
        self.seen_texts: list[str] = []

    @hookimpl
    def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                   texts: Sequence[str], settings: Settings) -> Sequence[Score]:
        self.seen_texts.extend(texts)
        words = set(re.findall(r"\w+", question.text.lower()))
        return [Score(len(words & set(re.findall(r"\w+", t.lower()))) / max(1, len(words)),
                      self.name, self.threshold) for t in texts]


class FirstScoreWins:
    @hookimpl
    def kgqa_combine_scores(self, scores: Sequence[Sequence[Score]],
                            settings: Settings) -> Sequence[Score]:
        return list(scores[0])


# -- kgqa_prefixes --------------------------------------------------------------------------------


def test_kgqa_prefixes() -> None:
    seen: list[Mode] = []

    class Prefixes:
        @hookimpl
        def kgqa_prefixes(self, mode: Mode) -> Mapping[str, str]:
            seen.append(mode)
            return {"ex": "http://example.org/", "wd": "http://not-wikidata.example/"}

    validator = Validator(Settings.for_mode("generic", {"wd": "http://www.wikidata.org/entity/"}),
                          plugin_manager=manager(Prefixes()))
    assert seen == [Mode.GENERIC]
    assert validator.settings.prefixes["ex"] == "http://example.org/"
    # The user's own prefixes win over a plugin's.
    assert validator.settings.prefixes["wd"] == "http://www.wikidata.org/entity/"
    (assessment,) = validator.check(["SELECT ?x WHERE { ?x ex:p wd:Q1 }"])
    assert assessment.valid, assessment.diagnostics
    (without,) = Validator(Settings.for_mode("generic"), plugin_manager=manager()).check(
        ["SELECT ?x WHERE { ?x ex:p ?y }"])
    assert [d.code for d in without.diagnostics] == ["unknown_prefix"]


# -- kgqa_parse -------------------------------------------------------------------------------------


def test_kgqa_parse() -> None:
    calls: list[int] = []

    class Parser:
        @hookimpl
        def kgqa_parse(self, candidates: Sequence[Candidate],
                       settings: Settings) -> Sequence[ParsedQuery]:
            calls.append(len(candidates))
            return [ParsedQuery(c.sparql, Form.ASK, False, (Diagnostic(
                "custom_parse", Severity.ERROR, "my parser says no", producer="parser"),))
                for c in candidates]

    validator = Validator(plugin_manager=manager(Parser()))
    assessments = validator.check([QUERY, QUERY])
    assert calls == [2]  # one batched call per request
    assert all(a.parsed.form is Form.ASK for a in assessments)
    assert [[d.code for d in a.diagnostics] for a in assessments] == [["custom_parse"]] * 2


def test_kgqa_parse_none_falls_through_to_the_builtin() -> None:
    class Abstains:
        @hookimpl
        def kgqa_parse(self, candidates: Sequence[Candidate],
                       settings: Settings) -> Sequence[ParsedQuery] | None:
            return None

    good, bad = Validator(plugin_manager=manager(Abstains())).check([QUERY, BROKEN])
    assert good.valid and not bad.valid


def test_kgqa_parse_missing_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="kgqa_parse"):
        Validator(plugin_manager=manager(block=[*NO_MODEL, "parse"])).check([QUERY])


# -- kgqa_check / kgqa_check_question -------------------------------------------------------------


def test_kgqa_check() -> None:
    received: list[tuple[str, str, Form]] = []

    class NoMinus:
        @hookimpl
        def kgqa_check(self, question: Question, candidate: Candidate, parsed: ParsedQuery,
                       settings: Settings) -> Sequence[Diagnostic] | None:
            received.append((question.text, candidate.sparql, parsed.form))
            if "MINUS" in candidate.sparql:
                return [Diagnostic("no_minus", Severity.ERROR, "MINUS is not allowed here",
                                   producer="no_minus")]
            return None

    validator = Validator(plugin_manager=manager(NoMinus()))
    minus = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 MINUS { ?x wdt:P21 wd:Q6581097 } }"
    plain, with_minus = validator.check([QUERY, minus], question="Who wrote it?")
    assert plain.valid
    assert not with_minus.valid
    assert [d.code for d in with_minus.diagnostics] == ["no_minus"]
    assert received == [("Who wrote it?", QUERY, Form.SELECT), ("Who wrote it?", minus, Form.SELECT)]


def test_kgqa_check_question() -> None:
    class Shouting:
        @hookimpl
        def kgqa_check_question(self, question: Question,
                                settings: Settings) -> Sequence[Diagnostic] | None:
            if question.text.isupper():
                return [Diagnostic("shouting", Severity.WARNING, "the question is in capitals")]
            return None

    validator = Validator(plugin_manager=manager(Shouting()))
    report = validator.validate("WHO WROTE IT?", [QUERY])
    assert [d.code for d in report.question_diagnostics] == ["shouting"]
    assert validator.validate("Who wrote it?", [QUERY]).question_diagnostics == ()


# -- kgqa_resolve_labels -----------------------------------------------------------------------------


def test_kgqa_resolve_labels() -> None:
    class Labels:
        @hookimpl
        def kgqa_resolve_labels(self, ids: Sequence[str],
                                settings: Settings) -> Mapping[str, str] | None:
            known = {"Q25338": "The Hitchhiker's Guide to the Galaxy", "P50": "author"}
            return {i: known[i] for i in ids if i in known}

    class OtherLabels:
        @hookimpl(trylast=True)
        def kgqa_resolve_labels(self, ids: Sequence[str],
                                settings: Settings) -> Mapping[str, str] | None:
            return {"Q25338": "a later source loses", "Q5": "human"}

    scorer = FakeScorer()
    validator = Validator(plugin_manager=manager(Labels(), OtherLabels(), scorer, FirstScoreWins()))
    assert validator.labels(["Q25338", "P50", "Q5", "Q1"]) == {
        "Q25338": "The Hitchhiker's Guide to the Galaxy", "P50": "author", "Q5": "human"}
    validator.validate("Who is the author of the Galaxy guide?", [QUERY])
    # The scorer reads the query with labels in place of the ids.
    assert len(scorer.seen_texts) == 1
    assert "wdt:author" in scorer.seen_texts[0]
    assert "hitchhiker" in scorer.seen_texts[0] and "Q25338" not in scorer.seen_texts[0]


# -- kgqa_score / kgqa_combine_scores -----------------------------------------------------------------


def test_kgqa_score() -> None:
    scorer = FakeScorer(threshold=0.5)
    # Near variants stay accepted here: this is about scores (tests/test_decision_rules.py).
    validator = Validator(Settings(reject_outranked=False),
                          plugin_manager=manager(scorer, FirstScoreWins()))
    unrelated = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"
    partly = "SELECT ?x WHERE { wd:Q25338 wdt:P31 ?x }"
    # Question words x, q25338, author (P50 as the scoring text names it): QUERY has all
    # three, partly two, unrelated one.
    report = validator.validate("x Q25338 author", [unrelated, BROKEN, partly, QUERY])
    assert report.scorer == "fake"
    # Scorers read the canonical scoring text; invalid candidates are never scored.
    labels = shipped_properties().labels()
    assert scorer.seen_texts == [scoring_text(q, labels) for q in (unrelated, partly, QUERY)]
    assert [(v.candidate.sparql, v.decision, v.score) for v in report.verdicts] == [
        (QUERY, Decision.ACCEPTED, pytest.approx(1.0)),
        (partly, Decision.ACCEPTED, pytest.approx(2 / 3)),
        (unrelated, Decision.REJECTED, pytest.approx(1 / 3)),  # below the scorer's 0.5
        (BROKEN, Decision.REJECTED, None),
    ]
    assert [v.rank for v in report.verdicts] == [1, 2, 3, 4]
    below = [d for d in report.verdicts[2].diagnostics if d.code == "below_threshold"]
    assert len(below) == 1 and "0.333" in below[0].message and "0.500" in below[0].message
    assert report.best is not None and report.best.candidate.sparql == QUERY


def test_kgqa_score_abstaining_leaves_candidates_unscored() -> None:
    class Abstains:
        @hookimpl
        def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                       texts: Sequence[str], settings: Settings) -> Sequence[Score] | None:
            return None

    report = Validator(plugin_manager=manager(Abstains(), FirstScoreWins())).validate(
        "Who wrote it?", [QUERY])
    assert report.scorer is None and report.verdicts[0].score is None
    # The report says that nothing scored the candidates.
    assert report.notes == (NO_SCORER_NOTE,)
    assert "no scorer" in NO_SCORER_NOTE


def test_kgqa_combine_scores() -> None:
    class Maximum:
        @hookimpl
        def kgqa_combine_scores(self, scores: Sequence[Sequence[Score]],
                                settings: Settings) -> Sequence[Score]:
            return [max(per, key=lambda s: s.value) for per in zip(*scores, strict=True)]

    class Constant:
        @hookimpl
        def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                       texts: Sequence[str], settings: Settings) -> Sequence[Score]:
            return [Score(0.25, "constant", 0.1) for _ in texts]

    report = Validator(plugin_manager=manager(FakeScorer(), Constant(), Maximum())).validate(
        "select x where", [QUERY, "SELECT ?y WHERE { ?y wdt:P31 wd:Q5 }"])
    scores = {v.candidate.sparql: v.score for v in report.verdicts}
    assert scores[QUERY] == pytest.approx(1.0)  # the fake scorer's, the larger
    assert scores["SELECT ?y WHERE { ?y wdt:P31 wd:Q5 }"] == pytest.approx(2 / 3)
    assert report.scorer == "combined"


def test_builtin_combination_is_the_mean() -> None:
    # The built-in combiner lives in the scoring plugin; registered alone it needs no model.
    from kgqa_validator.builtin import scoring

    class Constant:
        @hookimpl
        def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                       texts: Sequence[str], settings: Settings) -> Sequence[Score]:
            return [Score(0.0, "zero", 0.2) for _ in texts]

    pm = manager(FakeScorer(threshold=0.6), Constant(), _MeanOnly(scoring))
    report = Validator(plugin_manager=pm).validate("select x where", [QUERY])
    assert report.verdicts[0].score == pytest.approx(0.5)


class _MeanOnly:
    def __init__(self, scoring: Any) -> None:
        self._combine = scoring.kgqa_combine_scores

    @hookimpl(trylast=True)
    def kgqa_combine_scores(self, scores: Sequence[Sequence[Score]],
                            settings: Settings) -> Sequence[Score] | None:
        result: Sequence[Score] | None = self._combine(scores=scores, settings=settings)
        return result


# -- kgqa_decide ------------------------------------------------------------------------------------


def test_kgqa_decide() -> None:
    class RejectAll:
        @hookimpl
        def kgqa_decide(self, question: Question, assessments: Sequence[Assessment],
                        settings: Settings) -> Sequence[Verdict]:
            ordered = sorted(assessments, key=lambda a: -a.candidate.index)
            return [Verdict(a.candidate, Decision.REJECTED, rank, a.valid, a.score,
                            a.diagnostics, producer="reject_all")
                    for rank, a in enumerate(ordered, 1)]

    report = Validator(plugin_manager=manager(RejectAll())).validate("Who?", [QUERY, BROKEN])
    assert [v.candidate.index for v in report.verdicts] == [1, 0]
    assert all(v.decision is Decision.REJECTED and v.producer == "reject_all"
               for v in report.verdicts)
    assert report.best is None


def test_builtin_decision_ranks_valid_first() -> None:
    report = Validator(plugin_manager=manager()).validate("Who?", [BROKEN, QUERY])
    assert [(v.candidate.index, v.decision) for v in report.verdicts] == [
        (1, Decision.ACCEPTED), (0, Decision.REJECTED)]
    assert report.verdicts[0].producer == "decide"


# -- kgqa_execute -------------------------------------------------------------------------------------


def test_kgqa_execute() -> None:
    executed: list[str] = []

    class Executor:
        @hookimpl
        def kgqa_execute(self, candidate: Candidate, parsed: ParsedQuery,
                         settings: Settings) -> Execution:
            executed.append(candidate.sparql)
            return Execution("ok", "test://endpoint", row_count=1, variables=("x",),
                             rows=({"x": "Douglas Adams"},), producer="executor")

    validator = Validator(plugin_manager=manager(Executor()))
    report = validator.validate("Who wrote it?", [QUERY, BROKEN], execute=True)
    assert executed == [QUERY]  # an invalid candidate is never executed
    best = report.best
    assert best is not None and best.execution is not None
    assert best.execution.rows == ({"x": "Douglas Adams"},)
    assert best.execution.producer == "executor"
    assert validator.validate("Who wrote it?", [QUERY]).verdicts[0].execution is None


def test_builtin_decision_uses_execution_results() -> None:
    # The documented rule (builtin/decide.py): among accepted candidates, one with an answer
    # moves ahead of an empty one scoring at most EXECUTION_MARGIN (0.05) higher; an answer
    # the endpoint rejected or could not give rejects the candidate.
    scores = {"Q1": 0.90, "Q2": 0.88, "Q3": 0.70, "Q4": 0.60, "Q5": 0.95}
    outcomes = {"Q1": "empty", "Q2": "ok", "Q3": "ok", "Q4": "empty", "Q5": "rejected"}

    def qid(sparql: str) -> str:
        return re.findall(r"wd:(Q\d+)", sparql)[0]

    class Scorer:
        @hookimpl
        def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                       texts: Sequence[str], settings: Settings) -> Sequence[Score]:
            return [Score(scores[qid(c.sparql)], "fixed", 0.5) for c in candidates]

    class Executor:
        @hookimpl
        def kgqa_execute(self, candidate: Candidate, parsed: ParsedQuery,
                         settings: Settings) -> Execution:
            status = outcomes[qid(candidate.sparql)]
            return Execution(status, "test://endpoint", row_count=1 if status == "ok" else 0,
                             producer="executor")

    queries = {q: f"SELECT ?x WHERE {{ ?x wdt:P31 wd:{q} }}" for q in scores}
    # The five queries are near variants of each other: outranking is switched off to see
    # the execution rule alone (tests/test_decision_rules.py has the outranking).
    validator = Validator(Settings(execute=True, reject_outranked=False),
                          plugin_manager=manager(Scorer(), Executor(), FirstScoreWins()))
    # Executed are the best three: Q5, Q1, Q2.
    report = validator.validate("Which?", list(queries.values()))
    order = [(qid(v.candidate.sparql), v.decision) for v in report.verdicts]
    assert order == [("Q2", Decision.ACCEPTED),   # an answer, 0.02 below the empty Q1
                     ("Q1", Decision.ACCEPTED),
                     ("Q3", Decision.ACCEPTED),   # not executed, kept in score order
                     ("Q4", Decision.ACCEPTED),
                     ("Q5", Decision.REJECTED)]   # the endpoint rejected it
    # Beyond the margin the score wins: Q1 (empty) stays ahead of Q3 (an answer, 0.20 lower).
    report = validator.validate("Which?", [queries["Q3"], queries["Q1"]])
    assert [qid(v.candidate.sparql) for v in report.verdicts] == ["Q1", "Q3"]


def test_kgqa_execute_runs_at_most_three() -> None:
    executed: list[int] = []

    class Executor:
        @hookimpl
        def kgqa_execute(self, candidate: Candidate, parsed: ParsedQuery,
                         settings: Settings) -> Execution:
            executed.append(candidate.index)
            return Execution("empty", "test://endpoint", row_count=0)

    queries = [f"SELECT ?x WHERE {{ ?x wdt:P31 wd:Q{i} }}" for i in range(1, 6)]
    Validator(plugin_manager=manager(Executor())).validate("Who?", queries, execute=True)
    assert executed == [0, 1, 2]


# -- every hook has a test and a documented contract --------------------------------------------------


def _hook_names() -> list[str]:
    return [name for name, obj in vars(hookspecs).items()
            if name.startswith("kgqa_") and inspect.isfunction(obj)]


def test_every_hook_is_tested_and_documented() -> None:
    names = _hook_names()
    assert len(names) == 9
    source = Path(__file__).read_text(encoding="utf-8")
    for name in names:
        assert re.search(rf"^def test_{name}\(", source, re.MULTILINE), f"no test for {name}"
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        params = inspect.signature(getattr(hookspecs, name)).parameters
        for param in params:
            assert f":param {param}:" in doc, f"{name} does not document {param}"
