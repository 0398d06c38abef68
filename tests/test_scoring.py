"""The shipped model, for real: ranking, rejection, caching, verbalisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgqa_validator import Decision, Question, Validator
from kgqa_validator.builtin.scoring import encoder_for
from kgqa_validator.model.encoder import SHIPPED_MODEL, Encoder, read_threshold
from kgqa_validator.scoring_text import ids_in, verbalise
from kgqa_validator.validator import NO_SCORER_NOTE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LABELS = FIXTURES / "labels.json"
CASES = [json.loads(line) for line in (FIXTURES / "scoring_cases.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(autoload=False, labels_files=(LABELS,))


def test_shipped_model_is_in_the_package_with_its_threshold():
    assert (SHIPPED_MODEL / "modules.json").is_file()
    weights = list(SHIPPED_MODEL.glob("*.safetensors"))
    assert weights, "the model ships as safetensors"
    threshold = read_threshold(SHIPPED_MODEL)
    assert 0.0 < threshold < 1.0
    meta = json.loads((SHIPPED_MODEL / "threshold.json").read_text())
    assert meta["calibration"]["pairs"] > 0  # calibrated, not hard-coded


@pytest.mark.parametrize("case", CASES, ids=[c["question"] for c in CASES])
def test_right_query_first(validator: Validator, case: dict) -> None:
    # Gold last, so that input order cannot be what puts it first.
    candidates = [*case["distractors"], case["gold"]]
    report = validator.validate(case["question"], candidates)
    # With three or more valid candidates their agreement takes part (test_consensus.py).
    assert report.scorer == ("combined" if len(candidates) >= 3 else "encoder")
    best = report.best
    assert best is not None
    assert best.candidate.sparql == case["gold"]
    assert best.rank == 1
    assert [v.rank for v in report.verdicts] == list(range(1, len(candidates) + 1))


def test_unrelated_query_is_rejected_below_threshold(validator: Validator) -> None:
    report = validator.validate(
        "What is the capital of France?",
        ["SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }", "SELECT ?m WHERE { wd:Q1299 wdt:P527 ?m }"],
    )
    by_text = {v.candidate.sparql: v for v in report.verdicts}
    unrelated = by_text["SELECT ?m WHERE { wd:Q1299 wdt:P527 ?m }"]
    assert unrelated.decision is Decision.REJECTED
    assert unrelated.valid
    assert "below_threshold" in [d.code for d in unrelated.diagnostics]
    assert by_text["SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }"].decision is Decision.ACCEPTED


def test_invalid_candidate_is_rejected_and_ranked_last(validator: Validator) -> None:
    report = validator.validate(
        "What is the capital of France?",
        ["SELECT ?c WHERE { wd:Q142 wdt:P36 }", "SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }"],
    )
    assert report.verdicts[0].candidate.index == 1
    last = report.verdicts[-1]
    assert not last.valid and last.decision is Decision.REJECTED and last.score is None
    assert "syntax_error" in [d.code for d in last.diagnostics]


def test_ranking_is_stable_for_equal_scores(validator: Validator) -> None:
    query = "SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }"
    report = validator.validate("What is the capital of France?", [query, query, query])
    assert [v.candidate.index for v in report.verdicts] == [0, 1, 2]


def test_question_embedded_once_and_embeddings_cached(validator: Validator) -> None:
    encoder = encoder_for(validator.settings)
    model = encoder._load()
    seen: list[list[str]] = []
    original = model.encode

    def counting(texts, *args, **kwargs):
        seen.append(list(texts))
        return original(texts, *args, **kwargs)

    model.encode = counting
    try:
        question = "Who wrote The Hitchhiker's Guide to the Galaxy? (cache test)"
        candidates = ["SELECT ?a WHERE { wd:Q25338 wdt:P50 ?a }",
                      "SELECT ?a WHERE { wd:Q25338 wdt:P57 ?a }"]
        validator.validate(question, candidates)
        assert len(seen) == 1  # one batched call for the request
        assert seen[0].count(question) == 1
        validator.validate(question, candidates)
        assert len(seen) == 1  # everything came from the cache
    finally:
        model.encode = original


def test_labels_are_used_when_available() -> None:
    with_labels = Validator(autoload=False, labels_files=(LABELS,))
    without = Validator(autoload=False)
    question = Question("Where was Douglas Adams born?")
    query = "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }"
    labelled = with_labels.score(question, with_labels.check([query]))
    plain = without.score(question, without.check([query]))
    assert labelled[0].scored_text == "select ?p where [ wd:douglas_adams wdt:place_of_birth ?p ]"
    # Without label files the shipped property table still names every property.
    assert plain[0].scored_text == "select ?p where [ wd:Q42 wdt:place_of_birth ?p ]"
    assert labelled[0].score is not None and plain[0].score is not None


def test_without_a_scorer_valid_candidates_come_first_and_the_report_says_so() -> None:
    validator = Validator(autoload=False, block=["scoring"])
    report = validator.validate("Where was Douglas Adams born?",
                                ["SELECT ?p WHERE { wd:Q42 wdt:P19 }",
                                 "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }"])
    assert report.scorer is None
    assert report.notes == (NO_SCORER_NOTE,)
    assert [v.candidate.index for v in report.verdicts] == [1, 0]
    assert report.verdicts[0].decision is Decision.ACCEPTED


def test_verbaliser_keeps_unlabelled_ids() -> None:
    labels = {"Q42": "Douglas Adams", "P19": "place of birth"}
    text = "SELECT ?x WHERE { wd:Q42 wdt:P19 ?x . ?x wdt:P17 wd:Q999999 }"
    assert verbalise(text, labels) == (
        "select ?x where [ wd:douglas_adams wdt:place_of_birth ?x . ?x wdt:P17 wd:Q999999 ]")
    assert ids_in(text) == ["Q42", "P19", "P17", "Q999999"]


def test_encoder_refuses_a_folder_without_model(tmp_path: Path) -> None:
    from kgqa_validator.errors import ModelError

    with pytest.raises(ModelError, match="no model"):
        Encoder(tmp_path)
