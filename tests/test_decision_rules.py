"""The decision's rules beyond the threshold: a near variant of a better candidate is
``outranked``; when the encoder rejects every candidate, the consensus choice is kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from kgqa_validator import Candidate, Decision, Question, Score, Settings, Validator, hookimpl
from kgqa_validator.builtin.decide import near_variant
from kgqa_validator.plugins import get_plugin_manager
from kgqa_validator.structure_key import structure
from kgqa_validator.types import Execution, ExecutionStatus

LABELS = Path(__file__).resolve().parents[1] / "fixtures" / "labels.json"
BORN = "Where was Douglas Adams born?"
RIGHT = "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }"
RIGHT_SPELLED = ("PREFIX wdt: <http://www.wikidata.org/prop/direct/>\n"
                 "select $place where { <http://www.wikidata.org/entity/Q42> wdt:P19 $place }")
DEATH = "SELECT ?p WHERE { wd:Q42 wdt:P20 ?p }"
OTHER_ENTITY = "SELECT ?p WHERE { wd:Q5 wdt:P19 ?p }"
SWAPPED = "SELECT ?p WHERE { ?p wdt:P19 wd:Q42 }"
WIDER = "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p . ?p wdt:P17 ?c }"
DISTINCT = "SELECT DISTINCT ?p WHERE { wd:Q42 wdt:P19 ?p }"
COUNTED = "SELECT (COUNT(?p) AS ?n) WHERE { wd:Q42 wdt:P19 ?p }"


def tokens(sparql: str) -> tuple[str, ...]:
    return structure(sparql).tokens


@pytest.mark.parametrize(("other", "substituted"), [
    (DEATH, 1), (OTHER_ENTITY, 1), (SWAPPED, 2),
    (RIGHT_SPELLED, 0),  # the same query, spelled otherwise
    (WIDER, 0), (DISTINCT, 0), (COUNTED, 0),  # adds something: may be as right
    ("SELECT ?p WHERE { wd:Q5 wdt:P20 ?x }", 0),  # three substitutions
])
def test_near_variants(other: str, substituted: int) -> None:
    assert near_variant(tokens(RIGHT), tokens(other)) == substituted
    assert near_variant(tokens(other), tokens(RIGHT)) == substituted
    ordered = ("SELECT ?x WHERE { ?x wdt:P31 wd:Q5 } ORDER BY DESC(?x) LIMIT 1",
               "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 } ORDER BY ASC(?x) LIMIT 1")
    assert near_variant(tokens(ordered[0]), tokens(ordered[1])) == 1


class ScoreTable:
    """A scorer plugin with fixed scores: the decision rules, isolated from any model."""

    def __init__(self, scores: Mapping[str, float], threshold: float = 0.2) -> None:
        self.scores, self.threshold = scores, threshold

    @hookimpl
    def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                   texts: Sequence[str], settings: Settings) -> Sequence[Score]:
        # As the shipped scorer: an explicit Settings.threshold replaces the model's.
        threshold = settings.threshold if settings.threshold is not None else self.threshold
        return [Score(self.scores[c.sparql], "encoder", threshold) for c in candidates]


def validator(scores: Mapping[str, float], **settings: object) -> Validator:
    pm = get_plugin_manager(autoload=False, block=["scoring", "execute", "endpoint_labels"])
    pm.register(ScoreTable(scores))
    return Validator(Settings(**settings), plugin_manager=pm)  # type: ignore[arg-type]


def by_sparql(report) -> dict[str, tuple[Decision, list[str]]]:  # type: ignore[no-untyped-def]
    return {v.candidate.sparql: (v.decision, [d.code for d in v.diagnostics])
            for v in report.verdicts}


def test_a_near_variant_of_a_better_candidate_is_outranked() -> None:
    scores = {RIGHT: 0.8, DEATH: 0.7, OTHER_ENTITY: 0.65, WIDER: 0.6, SWAPPED: 0.5}
    report = validator(scores, consensus=False).validate(BORN, list(scores))
    got = by_sparql(report)
    assert report.best is not None and report.best.candidate.sparql == RIGHT
    for loser in (DEATH, OTHER_ENTITY, SWAPPED):
        assert got[loser] == (Decision.REJECTED, ["outranked"])
    assert got[WIDER] == (Decision.ACCEPTED, [])  # differs by a whole triple: may be right too
    assert [v.decision for v in report.verdicts] == [Decision.ACCEPTED] * 2 + [Decision.REJECTED] * 3
    death = next(v for v in report.verdicts if v.candidate.sparql == DEATH)
    assert "ranked 1" in death.diagnostics[0].message and "one term" in death.diagnostics[0].message
    # Switched off, every candidate above the threshold is accepted.
    off = validator(scores, consensus=False, reject_outranked=False).validate(BORN, list(scores))
    assert all(v.decision is Decision.ACCEPTED for v in off.verdicts)


def test_copies_and_wider_queries_are_not_outranked() -> None:
    scores = {RIGHT: 0.8, RIGHT_SPELLED: 0.79, DISTINCT: 0.7, COUNTED: 0.3}
    # The lone COUNT also contradicts a "where" question (form_mismatch), which would outrank
    # it on its own (the test below); with the demotion off only the near-variant rule is left.
    report = validator(scores, consensus=False, demote_mismatches=False).validate(BORN, list(scores))
    assert all(v.decision is Decision.ACCEPTED for v in report.verdicts)


def test_equivalent_spellings_ties_and_label_boilerplate_are_not_outranked() -> None:
    columns = ("SELECT ?a ?b WHERE { ?a wdt:P26 ?b }", "SELECT ?b ?a WHERE { ?a wdt:P26 ?b }")
    filters = ("SELECT ?x ?y WHERE { ?x wdt:P26 ?y FILTER(?x = ?y) }",
               "SELECT ?x ?y WHERE { ?x wdt:P26 ?y FILTER(?y = ?x) }")
    label = ('SELECT ?p ?pLabel WHERE { wd:Q42 wdt:P19 ?p '
             'SERVICE wikibase:label { bd:serviceParam wikibase:language "%s" } }')
    languages = (label % "en", label % "[AUTO_LANGUAGE],en")
    for pair in (columns, filters, languages):
        report = validator(dict(zip(pair, (0.8, 0.7), strict=True)), consensus=False).validate(
            "Who is married to whom?", list(pair))
        assert all(v.decision is Decision.ACCEPTED for v in report.verdicts), pair
    # Equal scores: input order would decide, so nobody is outranked.
    tie = {RIGHT: 0.5, DEATH: 0.5, OTHER_ENTITY: 0.5}
    report = validator(tie, consensus=False).validate(BORN, list(tie))
    assert all(v.decision is Decision.ACCEPTED for v in report.verdicts)


WHICH = "Which city was Douglas Adams born in?"
ASKED = "ASK WHERE { wd:Q42 wdt:P19 wd:Q350 }"
COUNTED_BIRTH = "SELECT (COUNT(?p) AS ?n) WHERE { wd:Q42 wdt:P19 ?p }"


def test_a_candidate_the_question_contradicts_is_outranked_by_one_it_does_not() -> None:
    # The ASK and the lone COUNT score higher, but a "which" question contradicts both: the
    # SELECT ranks first and the two are rejected, naming the mismatch and the better rank.
    scores = {ASKED: 0.9, COUNTED_BIRTH: 0.85, RIGHT: 0.6}
    report = validator(scores, consensus=False).validate(WHICH, list(scores))
    got = by_sparql(report)
    assert report.best is not None and report.best.candidate.sparql == RIGHT
    for loser in (ASKED, COUNTED_BIRTH):
        decision, codes = got[loser]
        assert decision is Decision.REJECTED and codes == ["form_mismatch", "outranked"], loser
    note = next(v for v in report.verdicts if v.candidate.sparql == ASKED).diagnostics[-1]
    assert "form_mismatch" in note.message and "ranked 1" in note.message
    # When every candidate is contradicted, none is rejected for it: the lint may be wrong
    # about the question, and the best of them still answers.
    only = {ASKED: 0.9, COUNTED_BIRTH: 0.85}
    report = validator(only, consensus=False).validate(WHICH, list(only))
    assert [v.decision for v in report.verdicts] == [Decision.ACCEPTED] * 2
    # A contradicted candidate below the threshold is rejected for that, not outranked.
    low = {ASKED: 0.1, RIGHT: 0.6}
    report = validator(low, consensus=False).validate(WHICH, list(low))
    assert by_sparql(report)[ASKED] == (Decision.REJECTED, ["form_mismatch", "below_threshold"])
    # Each switch keeps the contradicted candidates accepted: without the demotion the scores
    # rank them first, and without outranking nothing accepted is rejected.
    for switch in ({"demote_mismatches": False}, {"reject_outranked": False}):
        report = validator(scores, consensus=False, **switch).validate(WHICH, list(scores))
        assert all(v.decision is Decision.ACCEPTED for v in report.verdicts), switch


@pytest.mark.parametrize("question", [
    "Can you tell me which city Douglas Adams was born in?",
    "Does anyone know where Douglas Adams was born?",
])
def test_a_question_behind_a_lead_in_keeps_the_query_that_answers_it(question: str) -> None:
    # "Can you ..." opens like a yes/no question; read as one, the ASK would fit and the
    # SELECT that answers would be rejected as contradicted.
    scores = {ASKED: 0.9, RIGHT: 0.6}
    got = by_sparql(validator(scores, consensus=False).validate(question, list(scores)))
    assert got[RIGHT] == (Decision.ACCEPTED, [])
    assert got[ASKED] == (Decision.REJECTED, ["form_mismatch", "outranked"])
    yes_no = "Tell me whether Douglas Adams was born in Cambridge."
    got = by_sparql(validator(scores, consensus=False).validate(yes_no, list(scores)))
    assert got[ASKED] == (Decision.ACCEPTED, [])
    assert got[RIGHT][0] is Decision.REJECTED and "form_mismatch" in got[RIGHT][1]


class FixedAnswers:
    """An executor with fixed results: whether a candidate answered, without an endpoint."""

    def __init__(self, answered: Sequence[str]) -> None:
        self.answered = answered

    @hookimpl
    def kgqa_execute(self, candidate: Candidate, parsed: object, settings: Settings) -> Execution:
        if candidate.sparql in self.answered:
            return Execution(ExecutionStatus.OK, "fixed", row_count=1, boolean=True)
        return Execution(ExecutionStatus.EMPTY, "fixed", row_count=0)


def test_an_answer_does_not_move_a_contradicted_candidate_ahead_of_one_that_fits() -> None:
    # The SELECT answers nothing here and the ASK answers, with close scores: an answer moves
    # a candidate ahead of an empty one, but not past what the question says.
    scores = {ASKED: 0.61, RIGHT: 0.6}
    v = validator(scores, consensus=False)
    v.pm.register(FixedAnswers([ASKED]))
    report = v.validate(WHICH, list(scores), execute=True)
    assert report.best is not None and report.best.candidate.sparql == RIGHT
    assert by_sparql(report)[ASKED] == (Decision.REJECTED, ["form_mismatch", "outranked"])
    # Among candidates that fit, the answer still counts.
    fits = {DEATH: 0.61, RIGHT: 0.6}
    v = validator(fits, consensus=False, reject_outranked=False)
    v.pm.register(FixedAnswers([RIGHT]))
    report = v.validate(BORN, list(fits), execute=True)
    assert report.best is not None and report.best.candidate.sparql == RIGHT


def test_a_rejected_candidate_outranks_nothing() -> None:
    # The better-scored near variant is below the threshold: it cannot push the other out.
    scores = {DEATH: 0.1, RIGHT: 0.5}
    report = validator(scores, consensus=False).validate(BORN, list(scores))
    assert by_sparql(report)[RIGHT] == (Decision.ACCEPTED, [])


def test_when_every_candidate_is_below_the_threshold_the_consensus_choice_is_kept() -> None:
    majority = [DEATH, "PREFIX wdt: <http://www.wikidata.org/prop/direct/> SELECT ?y { wd:Q42 wdt:P20 ?y }",
                "SELECT ?q WHERE { wd:Q42 wdt:P20 ?q . }"]
    odd = "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 . ?x wdt:P27 wd:Q145 }"
    scores = {**dict.fromkeys(majority, 0.1), odd: 0.15}
    report = validator(scores).validate(BORN, [odd, *majority])
    decisions = {v.candidate.index: v.decision for v in report.verdicts}
    assert decisions == {0: Decision.REJECTED, 1: Decision.ACCEPTED, 2: Decision.ACCEPTED,
                         3: Decision.ACCEPTED}  # every copy of the choice
    kept = report.verdicts[0]
    assert kept.score is not None and kept.score >= 0.2
    assert [d.code for d in kept.diagnostics] == ["accepted_by_consensus"]
    # Switched off: nothing is accepted.
    off = validator(scores, consensus_accepts=False).validate(BORN, [odd, *majority])
    assert all(v.decision is Decision.REJECTED for v in off.verdicts)
    # An explicit threshold stays a hard cut.
    strict = validator(scores, threshold=0.9).validate(BORN, [odd, *majority])
    assert all(v.decision is Decision.REJECTED for v in strict.verdicts)


def test_the_consensus_does_not_overrule_an_encoder_that_accepts_something() -> None:
    majority = [DEATH, DEATH, DEATH]
    scores = {DEATH: 0.1, RIGHT: 0.5}
    report = validator(scores).validate(BORN, [*majority, RIGHT])
    assert report.best is not None and report.best.candidate.sparql == RIGHT
    assert [v.decision for v in report.verdicts] == [Decision.ACCEPTED] + [Decision.REJECTED] * 3


def test_the_shipped_model_with_labels_keeps_birth_over_death() -> None:
    report = Validator(Settings(labels_files=(LABELS,)), autoload=False).validate(
        BORN, [DEATH, RIGHT])
    assert report.best is not None and report.best.candidate.sparql == RIGHT
    death = next(v for v in report.verdicts if v.candidate.sparql == DEATH)
    assert death.decision is Decision.REJECTED
    assert {"outranked", "below_threshold"} & {d.code for d in death.diagnostics}


def test_cli_switches(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kgqa_validator.cli import main

    def run(*extra: str) -> list[dict]:
        code = main(["rerank", "--no-plugins", "--json", "--threshold", "-1", *extra,
                     "-q", BORN, RIGHT, DEATH])
        assert code == 0
        return json.loads(capsys.readouterr().out)["ranking"]

    default = run()
    assert [r["verdict"] for r in default] == ["accepted", "rejected"]
    assert [d["code"] for d in default[1]["diagnostics"]] == ["outranked"]
    assert [r["verdict"] for r in run("--keep-outranked")] == ["accepted", "accepted"]


def test_without_a_scorer_nothing_is_outranked() -> None:
    # Input order is no evidence of which near variant is right.
    pm = get_plugin_manager(autoload=False, block=["scoring", "consensus", "execute",
                                                   "endpoint_labels"])
    report = Validator(Settings(), plugin_manager=pm).validate(BORN, [DEATH, RIGHT])
    assert [v.decision for v in report.verdicts] == [Decision.ACCEPTED, Decision.ACCEPTED]
