"""Consensus among candidates: the structural key, the scorer, its blend with the shipped encoder."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from kgqa_validator import (
    Candidate,
    Decision,
    Question,
    Score,
    Settings,
    Validator,
    get_plugin_manager,
    hookimpl,
)
from kgqa_validator.builtin import consensus
from kgqa_validator.builtin.combine import blend, combine
from kgqa_validator.cli import main
from kgqa_validator.errors import ConfigurationError
from kgqa_validator.structure_key import structure

LABELS = Path(__file__).resolve().parents[1] / "fixtures" / "labels.json"

BORN = "Where was Douglas Adams born?"
RIGHT = "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }"
DEATH = "SELECT ?p WHERE { wd:Q42 wdt:P20 ?p }"

SAME = [
    "SELECT ?place WHERE { wd:Q42 wdt:P19 ?place . ?place wdt:P17 ?country }",
    # PREFIX lines, other variable names, keyword case, layout, a comment, $-variables
    "PREFIX wd: <http://www.wikidata.org/entity/>\nPREFIX wdt: <http://www.wikidata.org/prop/direct/>\n"
    "select $x where {\n  wd:Q42 wdt:P19 $x .   # birth place\n  $x wdt:P17 ?c .\n}",
    # full IRIs, no PREFIX at all
    "SELECT ?a WHERE { <http://www.wikidata.org/entity/Q42> <http://www.wikidata.org/prop/direct/P19> ?a."
    " ?a <http://www.wikidata.org/prop/direct/P17> ?b }",
    # the query's own prefix names for the Wikidata namespaces
    "PREFIX e: <http://www.wikidata.org/entity/> PREFIX d: <http://www.wikidata.org/prop/direct/>\n"
    "SELECT ?b WHERE{e:Q42 d:P19 ?b.?b d:P17 ?z}",
]


@pytest.fixture(scope="module")
def shipped() -> Validator:
    # The real shipped model; the module-level encoder cache is shared by the validators.
    return Validator(autoload=False)


def test_spellings_of_one_query_share_a_key() -> None:
    keys = {structure(text).key for text in SAME}
    assert keys == {"SELECT ?v0 WHERE { wd:Q42 wdt:P19 ?v0 . ?v0 wdt:P17 ?v1 }"}


def test_other_meaning_other_key() -> None:
    base = structure(SAME[0]).key
    for other in (SAME[0].replace("P19", "P20"), SAME[0].replace("?country", "wd:Q145"),
                  SAME[0].replace("SELECT ?place", "SELECT ?country"),
                  "ASK { wd:Q42 wdt:P19 ?place . ?place wdt:P17 ?country }"):
        assert structure(other).key != base, other


def test_label_boilerplate_is_decoration() -> None:
    plain = "SELECT ?c WHERE { wd:Q42 wdt:P27 ?c }"
    service = ("SELECT ?c ?cLabel WHERE { wd:Q42 wdt:P27 ?c . "
               'SERVICE wikibase:label { bd:serviceParam wikibase:language "en". } }')
    rdfs = ('SELECT ?c ?name WHERE { wd:Q42 wdt:P27 ?c . OPTIONAL { ?c rdfs:label ?name '
            'FILTER(LANG(?name) = "en") } }')
    forms = [structure(q) for q in (plain, service, rdfs)]
    assert len({f.key for f in forms}) == 3  # the full key still tells them apart
    assert {f.core_key for f in forms} == {"SELECT ?v0 WHERE { wd:Q42 wdt:P27 ?v0 }"}
    # The variables that carry the meaning keep their numbers with or without decoration.
    assert forms[1].tokens[:2] == ("SELECT", "?v0")
    assert any(forms[2].decoration) and not any(forms[0].decoration)


def test_structure_never_fails_on_junk() -> None:
    for text in ("", "}}}{{{", "PREFIX", "PREFIX x: <", '"unterminated', "\x00\ud800", "?"):
        assert isinstance(structure(text).key, str)


def test_identical_candidates_are_votes() -> None:
    forms = [structure(q) for q in [DEATH, RIGHT, *SAME[:1], RIGHT.replace("?p", "?q")]]
    found = consensus.agreements(forms)
    assert [a.copies for a in found] == [1, 2, 1, 2]
    assert found[1].value == found[3].value > found[0].value > found[2].value


def test_blend_never_moves_a_candidate_across_the_threshold() -> None:
    values = [-0.5, 0.0, 0.1, 0.2059, 0.206, 0.3, 0.9, 1.0]
    for e, c, t, w in itertools.product(values, [0.0, 0.3, 1.0], [0.0, 0.206, 0.5], [0, 0.5, 1]):
        score = blend(Score(e, "encoder", t), Score(c, "consensus"), w)
        assert score.threshold == t
        assert (score.value >= t) == (e >= t), (e, c, t, w)
    # Without a threshold it is the plain blend; a lone consensus score is taken as it is.
    assert blend(Score(0.4, "x"), Score(1.0, "consensus"), 0.5).value == pytest.approx(0.7)
    assert combine([[Score(0.8, "consensus")]], Settings()) == [Score(0.8, "consensus")]


class TiedEncoder:
    """Every candidate gets the same score: only their agreement can order them."""

    @hookimpl
    def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                   texts: Sequence[str], settings: Settings) -> Sequence[Score]:
        return [Score(0.5, "encoder", 0.2) for _ in texts]


def tied(**settings: object) -> Validator:
    pm = get_plugin_manager(autoload=False, block=["scoring", "execute", "endpoint_labels"])
    pm.register(TiedEncoder())
    return Validator(Settings(**settings), plugin_manager=pm)  # type: ignore[arg-type]


def test_majority_wins_a_tie() -> None:
    majority = ["SELECT ?x WHERE { wd:Q42 wdt:P20 ?x }", DEATH,
                "PREFIX wdt: <http://www.wikidata.org/prop/direct/> SELECT ?y { wd:Q42 wdt:P20 ?y }"]
    report = tied().validate(BORN, [RIGHT, *majority])
    assert report.scorer == "combined"
    assert {v.candidate.index for v in report.verdicts[:3]} == {1, 2, 3}
    assert report.verdicts[-1].candidate.index == 0
    # Nothing is rejected for its score; the odd one out is one term away from the better
    # ranked majority, so it is outranked (tests/test_decision_rules.py), unless switched off.
    assert [v.decision for v in report.verdicts] == [Decision.ACCEPTED] * 3 + [Decision.REJECTED]
    assert [d.code for d in report.verdicts[-1].diagnostics] == ["outranked"]
    kept = tied(reject_outranked=False).validate(BORN, [RIGHT, *majority])
    assert all(v.decision is Decision.ACCEPTED for v in kept.verdicts)
    # Switched off: the tie stays a tie, broken by input order.
    off = tied(consensus=False).validate(BORN, [RIGHT, *majority])
    assert off.scorer == "encoder"
    assert [v.candidate.index for v in off.verdicts] == [0, 1, 2, 3]


def test_consensus_needs_three_valid_candidates() -> None:
    invalid = "SELECT ?p WHERE { wd:Q42 wdt:P20 }"
    report = tied().validate(BORN, [RIGHT, DEATH, invalid, invalid])
    assert report.scorer == "encoder"
    assert all(s.producer == "encoder" for v in report.verdicts for s in v.scores)
    assert [v.candidate.index for v in report.verdicts][:2] == [0, 1]


def test_settings_refuse_a_weight_outside_0_1() -> None:
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigurationError, match="consensus_weight"):
            Settings(consensus_weight=weight)
        with pytest.raises(ConfigurationError, match="consensus_weight_voted"):
            Settings(consensus_weight_voted=weight)
        with pytest.raises(ConfigurationError, match="consensus_weight"):
            Settings().with_consensus_weight(weight)
    fixed = Settings().with_consensus_weight(0.3)
    assert (fixed.consensus_weight, fixed.consensus_weight_voted) == (0.3, 0.3)


class StraightEncoder:
    """Scores fall with the input position: the encoder prefers the first candidate."""

    @hookimpl
    def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                   texts: Sequence[str], settings: Settings) -> Sequence[Score]:
        return [Score(0.9 - 0.1 * c.index, "encoder", 0.2) for c in candidates]


def straight(**settings: object) -> Validator:
    pm = get_plugin_manager(autoload=False, block=["scoring", "execute", "endpoint_labels"])
    pm.register(StraightEncoder())
    return Validator(Settings(reject_outranked=False, **settings),  # type: ignore[arg-type]
                     plugin_manager=pm)


def votes(report: object) -> dict[int, float | None]:
    """The blend weight each candidate's consensus score asks for (set on votes only)."""
    return {v.candidate.index: s.weight for v in report.verdicts  # type: ignore[attr-defined]
            for s in v.scores if s.producer == "consensus"}


DISTINCT = [RIGHT, DEATH, "SELECT ?p WHERE { wd:Q42 wdt:P20 ?p . ?p wdt:P17 ?c }",
            "SELECT ?p WHERE { wd:Q42 wdt:P20 ?p . ?p wdt:P131 ?c }"]
# Candidate 2 again, as another run writes it: PREFIX line, other variables, a label column.
COPY = ("PREFIX wdt: <http://www.wikidata.org/prop/direct/>\nselect $x ?xLabel { wd:Q42 wdt:P20 $x . "
        "$x wdt:P17 ?y . SERVICE wikibase:label { bd:serviceParam wikibase:language 'en' } }")


def test_votes_raise_the_consensus_weight() -> None:
    # Distinct candidates (hand-made variants, a beam): the consensus weighs
    # consensus_weight (0.5) and the encoder's preference for the first one stands.
    report = straight().validate(BORN, DISTINCT)
    assert set(votes(report).values()) == {None}
    assert report.best is not None and report.best.candidate.index == 0
    # The same request where two runs wrote the same query: the candidates are samples,
    # their votes count, and consensus_weight_voted (1) ranks by agreement alone.
    report = straight().validate(BORN, [*DISTINCT, COPY])
    assert votes(report) == {0: None, 1: None, 2: 1.0, 3: None, 4: 1.0}
    assert "2 return the same rows: votes" in report.verdicts[0].scores[1].detail
    assert report.best is not None and report.best.candidate.index == 2
    # Every part is a setting: a fixed weight for every request, or the votes' own.
    fixed = Validator(Settings(reject_outranked=False).with_consensus_weight(0.5),
                      plugin_manager=straight().pm).validate(BORN, [*DISTINCT, COPY])
    assert fixed.best is not None and fixed.best.candidate.index in (0, 1)  # the encoder's say
    low = straight(consensus_weight_voted=0.0).validate(BORN, [*DISTINCT, COPY])
    assert [v.candidate.index for v in low.verdicts] == [0, 1, 2, 3, 4]
    # Another entity is another query, however alike: no votes.
    other = straight().validate(BORN, [*DISTINCT, "SELECT ?p WHERE { wd:Q5 wdt:P20 ?p . ?p wdt:P17 ?c }"])
    assert set(votes(other).values()) == {None}


class PicksyEncoder:
    """Accepts the first four candidates (falling scores), rejects the rest."""

    @hookimpl
    def kgqa_score(self, question: Question, candidates: Sequence[Candidate],
                   texts: Sequence[str], settings: Settings) -> Sequence[Score]:
        return [Score(0.9 - 0.1 * c.index if c.index < 4 else 0.1, "encoder", 0.2)
                for c in candidates]


def test_copies_of_a_rejected_candidate_are_no_votes() -> None:
    pm = get_plugin_manager(autoload=False, block=["scoring", "execute", "endpoint_labels"])
    pm.register(PicksyEncoder())
    validator = Validator(Settings(reject_outranked=False), plugin_manager=pm)
    junk = "SELECT ?x WHERE { wd:Q1 wdt:P31 ?x }"
    once = validator.validate(BORN, [*DISTINCT, junk])
    twice = validator.validate(BORN, [*DISTINCT, junk, junk])
    assert votes(twice)[4] == votes(twice)[5] == 1.0
    # Sending the rejected query twice changes nothing among the others.
    assert once.best is not None and twice.best is not None
    assert twice.best.candidate.index == once.best.candidate.index == 0
    assert [v.candidate.index for v in twice.verdicts[:4]] == [v.candidate.index for v in once.verdicts[:4]]


def test_cli_consensus_weight_is_fixed_for_voted_requests(
        capsys: pytest.CaptureFixture[str]) -> None:
    # [RIGHT, DEATH, DEATH]: the copies of DEATH are votes, and by default they win.
    code, report = run_json(capsys)
    assert code == 0 and report["ranking"][0]["sparql"] == DEATH
    assert [s["weight"] for s in report["ranking"][0]["scores"]] == [None, 1.0]
    # --consensus-weight W is one weight for every request, voted or not.
    code, report = run_json(capsys, "--consensus-weight", "0")
    assert code == 0 and report["ranking"][0]["sparql"] == RIGHT
    assert {s["weight"] for v in report["ranking"] for s in v["scores"]} == {None, 0.0}


def test_shipped_model_majority_and_switch(shipped: Validator) -> None:
    candidates = [RIGHT, DEATH, DEATH, DEATH]
    encoder_only = Validator(Settings(consensus=False), plugin_manager=shipped.pm)
    alone = encoder_only.validate(BORN, candidates)
    assert alone.scorer == "encoder" and alone.best is not None
    assert alone.best.candidate.index == 0  # the encoder knows birth from death here
    voted = Validator(Settings(consensus_weight=1.0), plugin_manager=shipped.pm).validate(
        BORN, candidates)
    assert voted.best is not None and voted.best.candidate.sparql == DEATH
    by_index = {v.candidate.index: v for v in voted.verdicts}
    assert [s.producer for s in by_index[0].scores] == ["encoder", "consensus"]
    # The encoder's own score is unchanged by the consensus.
    assert by_index[0].scores[0].value == pytest.approx(alone.verdicts[0].score, abs=1e-6)


def test_consensus_never_rescues_a_rejected_candidate(shipped: Validator) -> None:
    # Members of the Beatles: below the threshold with labels (test_scoring.py).
    unrelated = "SELECT ?m WHERE { wd:Q1299 wdt:P527 ?m }"
    capital = "SELECT ?c WHERE { wd:Q142 wdt:P36 ?c }"
    for weight in (0.5, 1.0):
        settings = Settings(consensus_weight=weight, labels_files=(LABELS,))
        report = Validator(settings, plugin_manager=shipped.pm).validate(
            "What is the capital of France?", [unrelated, unrelated, unrelated, capital])
        assert report.scorer == "combined"
        assert report.best is not None and report.best.candidate.sparql == capital
        assert [v.decision for v in report.verdicts[1:]] == [Decision.REJECTED] * 3
        assert all("below_threshold" in [d.code for d in v.diagnostics] for v in report.verdicts[1:])


def test_low_consensus_never_rejects(shipped: Validator) -> None:
    # The right query is the odd one out; the encoder accepts it, so it stays accepted.
    others = ["SELECT ?p WHERE { wd:Q42 wdt:P20 ?p . ?p wdt:P17 ?c }",
              "SELECT ?p WHERE { wd:Q42 wdt:P20 ?p . ?p wdt:P131 ?c }",
              "SELECT ?p WHERE { wd:Q42 wdt:P20 ?p . ?p wdt:P17 wd:Q145 }"]
    encoder_only = Validator(Settings(consensus=False), plugin_manager=shipped.pm)
    before = {v.candidate.index: v.decision for v in encoder_only.validate(
        BORN, [*others, RIGHT]).verdicts}
    report = Validator(Settings(consensus_weight=1.0), plugin_manager=shipped.pm).validate(
        BORN, [*others, RIGHT])
    after = {v.candidate.index: v.decision for v in report.verdicts}
    assert after == before
    assert after[3] is Decision.ACCEPTED


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["rerank", "--no-plugins", "--json", *args, "-q", BORN, RIGHT, DEATH, DEATH])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_cli_switches(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys)
    assert code == 0 and report["scorer"] == "combined"
    assert [s["producer"] for s in report["ranking"][0]["scores"]] == ["encoder", "consensus"]
    assert all(s["value"] is not None for s in report["ranking"][0]["scores"])
    for switch in (["--no-consensus"], ["--block", "consensus"]):
        code, report = run_json(capsys, *switch)
        assert code == 0 and report["scorer"] == "encoder", switch
        assert all([s["producer"] for s in v["scores"]] == ["encoder"] for v in report["ranking"])
    code, heavy = run_json(capsys, "--consensus-weight", "1")
    assert heavy["ranking"][0]["sparql"] == DEATH


@pytest.mark.parametrize("weight", ["1.5", "-1", "nan"])
def test_cli_refuses_a_bad_weight(capsys: pytest.CaptureFixture[str], weight: str) -> None:
    code = main(["rerank", "--no-plugins", "--consensus-weight", weight, "-q", BORN, RIGHT])
    err = capsys.readouterr().err
    assert code == 2 and "--consensus-weight" in err and len(err.strip().splitlines()) == 1


def test_hostile_sizes_stay_bounded() -> None:
    # 1,000 distinct candidates, some of them 10,000 characters long: the pairwise work is
    # capped (MAX_PAIRS), so this takes seconds, not the minutes 500,000 comparisons would.
    long_query = "SELECT ?x WHERE { " + " ".join(
        f"?x wdt:P{i} wd:Q{i} ." for i in range(500)) + " }"
    assert len(long_query) > 10_000
    candidates = [Candidate(f"SELECT ?x WHERE {{ wd:Q{i} wdt:P31 ?x }}", i) for i in range(990)]
    candidates += [Candidate(long_query.replace("P0 ", f"P0{i} "), 990 + i) for i in range(10)]
    started = time.perf_counter()
    scores = consensus.kgqa_score(question=Question(BORN), candidates=candidates,
                                  texts=[c.sparql for c in candidates], settings=Settings())
    elapsed = time.perf_counter() - started
    assert scores is not None and len(scores) == 1_000
    assert all(0.0 <= s.value <= 1.0 for s in scores)
    assert elapsed < 60, elapsed  # a hang guard, not a benchmark (typically ~2 s here)
