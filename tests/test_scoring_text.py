"""Scorer v2: the canonical scoring text, the shipped property table, datatype lints, the
demotion rule and the generator-like negatives, with the real shipped model and real parsing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kgqa_validator import Decision, Settings, Validator
from kgqa_validator.model.data import in_development_slice, load_examples
from kgqa_validator.model.perturb import KINDS, Perturber
from kgqa_validator.properties import SHIPPED_TABLE, shipped_properties
from kgqa_validator.scoring_text import ids_in, scoring_text
from kgqa_validator.structure_key import structure

SPELLINGS = [
    "SELECT ?place WHERE { wd:Q42 wdt:P19 ?place }",
    "PREFIX wd: <http://www.wikidata.org/entity/>\nPREFIX wdt: <http://www.wikidata.org/prop/direct/>\n"
    "SELECT ?place WHERE { wd:Q42 wdt:P19 ?place }",
    "select ?place where {<http://www.wikidata.org/entity/Q42> "
    "<http://www.wikidata.org/prop/direct/P19> ?place .}",
    "PREFIX e: <http://www.wikidata.org/entity/>\nPREFIX d: <http://www.wikidata.org/prop/direct/>\n"
    "  SeLeCt   $place\n\n{ e:Q42   d:P19 ?place  } # a comment",
    "BASE <http://www.wikidata.org/entity/>\nSELECT ?place WHERE { <Q42> wdt:P19 ?place . "
    'SERVICE wikibase:label { bd:serviceParam wikibase:language "en". } }',
]


def test_every_spelling_has_one_scoring_text() -> None:
    texts = {scoring_text(q) for q in SPELLINGS}
    assert texts == {"select ?place where [ wd:Q42 wdt:P19 ?place ]"}
    labels = shipped_properties().labels()
    assert scoring_text(SPELLINGS[2], labels) == "select ?place where [ wd:Q42 wdt:place_of_birth ?place ]"


def test_every_spelling_gets_the_identical_score() -> None:
    # The encoder alone reads every spelling, label service included, as one text.
    validator = Validator(Settings(consensus=False), autoload=False)
    report = validator.validate("Where was Douglas Adams born?", SPELLINGS)
    scores = {v.score for v in report.verdicts}
    assert len(scores) == 1 and None not in scores
    assert all(v.decision is Decision.ACCEPTED for v in report.verdicts)


def test_every_spelling_gets_the_identical_score_with_consensus() -> None:
    # By default (consensus on with 3+ candidates) PREFIX lines, full IRIs, BASE, keyword case,
    # whitespace and an omitted WHERE still change nothing; the label service is decoration the
    # consensus weighs less, so it is left out here.
    spellings = [*SPELLINGS[:4], "BASE <http://www.wikidata.org/entity/>\n"
                 "SELECT ?place WHERE { <Q42> wdt:P19 ?place . }"]
    report = Validator(autoload=False).validate("Where was Douglas Adams born?", spellings)
    scores = {v.score for v in report.verdicts}
    assert len(scores) == 1 and None not in scores


LABEL_COLUMNS = [
    "SELECT ?place WHERE { wd:Q42 wdt:P19 ?place }",
    'SELECT ?place ?placeLabel WHERE { wd:Q42 wdt:P19 ?place . OPTIONAL { ?place rdfs:label '
    '?placeLabel FILTER(LANG(?placeLabel) = "en") } }',
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\nSELECT DISTINCT ?place ?name WHERE { "
    'wd:Q42 wdt:P19 ?place . OPTIONAL { ?place rdfs:label ?name . FILTER(lang(?name) = "en") . } }',
    "SELECT ?place ?placeLabel WHERE { wd:Q42 wdt:P19 ?place . "
    'SERVICE SILENT wikibase:label { bd:serviceParam wikibase:language "en" } }',
]


def test_label_columns_that_do_not_change_the_rows_are_not_read() -> None:
    # Label columns show an answer; they do not choose it.  The encoder was trained mostly on
    # queries without them, and reading them cost LLM-written queries their score.
    texts = [scoring_text(q) for q in LABEL_COLUMNS]
    assert texts[1] == texts[0] == texts[3]
    assert texts[2] == "select distinct ?place where [ wd:Q42 wdt:P19 ?place ]"


@pytest.mark.parametrize("query", [
    # the label is the answer: the only projected variable, or bound outside an OPTIONAL
    'SELECT ?label WHERE { wd:Q8201 rdfs:label ?label FILTER(LANG(?label) = "en") }',
    'SELECT ?x ?label WHERE { ?x wdt:P31 wd:Q5 ; rdfs:label ?label FILTER(LANG(?label) = "en") }',
    # an OPTIONAL that also asks something else, a label the ORDER BY uses
    'SELECT ?x ?xLabel WHERE { ?x wdt:P31 wd:Q5 OPTIONAL { ?x rdfs:label ?xLabel . ?x wdt:P19 ?b } }',
    'SELECT ?x ?xLabel WHERE { ?x wdt:P31 wd:Q5 OPTIONAL { ?x rdfs:label ?xLabel } } ORDER BY ?xLabel',
])
def test_labels_that_choose_or_order_the_rows_are_read(query: str) -> None:
    text = scoring_text(query)
    assert "rdfs:label" in text
    assert text.split(" where ")[0].count("?") == query.split(" WHERE ")[0].count("?")


@pytest.mark.parametrize("query, without", [
    # the label is the only column: it is the answer
    ("SELECT ?xLabel WHERE { ?x wdt:P31 wd:Q5 "
     "OPTIONAL { ?x rdfs:label ?xLabel FILTER(LANG(?xLabel) = 'en') } }",
     "SELECT ?xLabel WHERE { ?x wdt:P31 wd:Q5 }"),
    # an OPTIONAL first in its group, or on a variable nothing bound before, is a join
    ('SELECT ?city ?pop WHERE { OPTIONAL { ?city rdfs:label ?n FILTER(?n = "Paris"@en) } '
     "?city wdt:P1082 ?pop }",
     "SELECT ?city ?pop WHERE { ?city wdt:P1082 ?pop }"),
    ("SELECT ?x ?y WHERE { ?x wdt:P31 wd:Q5 OPTIONAL { ?y rdfs:label ?l FILTER(LANG(?l) = 'en') } }",
     "SELECT ?x ?y WHERE { ?x wdt:P31 wd:Q5 }"),
    # aliases multiply rows (COUNT, LIMIT), and so does a label in every language
    ("SELECT (COUNT(?x) AS ?n) WHERE { ?x wdt:P31 wd:Q5 "
     "OPTIONAL { ?x skos:altLabel ?a FILTER(LANG(?a) = 'en') } }",
     "SELECT (COUNT(?x) AS ?n) WHERE { ?x wdt:P31 wd:Q5 }"),
    ("SELECT ?x WHERE { ?x wdt:P31 wd:Q5 OPTIONAL { ?x rdfs:label ?l } } LIMIT 10",
     "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 } LIMIT 10"),
])
def test_label_groups_that_change_the_rows_are_read(query: str, without: str) -> None:
    assert scoring_text(query) != scoring_text(without)


def test_label_groups_are_dropped_however_they_are_spelled() -> None:
    plain = scoring_text("SELECT ?x WHERE { ?x wdt:P31 wd:Q5 . ?x wdt:P19 ?y }")
    for query in [
        "SELECT ?x ?l WHERE { ?x wdt:P31 wd:Q5 . OPTIONAL { ?x rdfs:label ?l FILTER "
        'langMatches(LANG(?l), "en") } . ?x wdt:P19 ?y }',
        "SELECT ?x ?l WHERE { ?x wdt:P31 wd:Q5 . OPTIONAL { ?x <http://www.w3.org/2000/01/rdf-schema#label> "
        "?l . FILTER(LANG(?l) = 'en') . } . ?x wdt:P19 ?y }",
        "SELECT ?x ?xLabel WHERE { ?x wdt:P31 wd:Q5 . ?x wdt:P19 ?y . "
        'SERVICE SILENT wikibase:label { bd:serviceParam wikibase:language "en" } }',
    ]:
        assert scoring_text(query) == plain, query


def test_a_label_service_that_asks_about_an_entity_is_read() -> None:
    # The label service's manual mode on a constant: the entity and its description are the
    # answer ("What is Kraków?"), not decoration; two entities read apart.
    query = ("PREFIX schema: <http://schema.org/>\nSELECT DISTINCT ?x WHERE { SERVICE wikibase:label "
             '{ bd:serviceParam wikibase:language "en" . wd:Q31487 schema:description ?x . } }')
    text = scoring_text(query)
    assert "wd:Q31487" in text and "schema:description" in text
    other = query.replace("Q31487", "Q1748")
    assert scoring_text(other) != text
    assert structure(other).core_key != structure(query).core_key
    # ... while the manual mode on a variable the query binds is still boilerplate.
    manual = ("SELECT ?x ?name WHERE { ?x wdt:P31 wd:Q5 . SERVICE wikibase:label { "
              'bd:serviceParam wikibase:language "en" . ?x rdfs:label ?name } }')
    assert scoring_text(manual) == scoring_text("SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }")


def test_the_core_key_is_equal_only_for_the_same_rows() -> None:
    keys = [structure(LABEL_COLUMNS[k]).core_key for k in (0, 1, 3)]
    assert keys == [keys[0]] * 3
    # A label outside OPTIONAL drops the entities without an English label: other rows.
    joined = ('SELECT ?place ?n WHERE { wd:Q42 wdt:P19 ?place . ?place rdfs:label ?n '
              'FILTER(LANG(?n) = "en") }')
    assert structure(joined).core_key != keys[0]


def test_literals_operators_and_paths_survive() -> None:
    text = scoring_text('ASK { ?x wdt:P31/wdt:P279* wd:Q5 ; rdfs:label "Ada"@en . '
                        'FILTER(?n >= "1"^^xsd:integer && ?n != 3) }')
    assert text == ('ask where [ ?x wdt:P31 / wdt:P279 * wd:Q5 ; rdfs:label "Ada"@en . '
                    'filter ( ?n >= "1"^^xsd:integer && ?n != 3 ) ]')
    assert ids_in("SELECT ?x { <http://www.wikidata.org/entity/Q1> wdt:P6 ?x }") == ["Q1", "P6"]


def test_the_property_table_ships_every_property_and_stays_small() -> None:
    table = shipped_properties()
    assert len(table) == 13_865
    assert SHIPPED_TABLE.stat().st_size < 400_000
    assert (table.label("P19"), table.datatype("P19")) == ("place of birth", "wikibase-item")
    assert table.datatype("P1082") == "quantity"
    assert table.missing("P7") and not table.missing("P19") and not table.missing("P99999999")


def test_the_build_script_reproduces_the_table(tmp_path: Path) -> None:
    source = tmp_path / "props.jsonl"
    source.write_text(json.dumps({"id": "P19", "label": "place  of birth", "datatype": "wikibase-item"})
                      + "\n" + json.dumps({"id": "P6", "label": None, "datatype": "wikibase-item"}) + "\n")
    out = tmp_path / "t.tsv.gz"
    script = Path(__file__).resolve().parents[1] / "scripts" / "build_properties.py"
    subprocess.run([sys.executable, str(script), str(source), "--output", str(out)], check=True,
                   capture_output=True)
    from kgqa_validator.properties import PropertyTable

    table = PropertyTable.read(out)
    assert table.label("P19") == "place of birth" and table.label("P6") is None
    first = out.read_bytes()
    subprocess.run([sys.executable, str(script), str(source), "--output", str(out)], check=True,
                   capture_output=True)
    assert out.read_bytes() == first  # deterministic


def test_a_nonexistent_property_is_unknown_without_network() -> None:
    # No endpoint settings at all: an outbound request would fail the check with a contact error.
    validator = Validator(autoload=False, block=["scoring", "endpoint_labels", "execute"])
    (assessment,) = validator.check(["SELECT ?x WHERE { wd:Q42 wdt:P7 ?x }"])
    unknown = [d for d in assessment.diagnostics if d.code == "unknown_id"]
    assert len(unknown) == 1 and "P7" in unknown[0].message
    assert not assessment.valid
    (fine,) = validator.check(["SELECT ?x WHERE { wd:Q42 wdt:P19 ?x }"])
    assert "unknown_id" not in [d.code for d in fine.diagnostics]
    off = Validator(Settings(property_table=False), autoload=False, block=["scoring"])
    assert off.check(["SELECT ?x WHERE { wd:Q42 wdt:P7 ?x }"])[0].valid


def _codes(validator: Validator, query: str, question: str) -> list[str]:
    (assessment,) = validator.check([query], question=question)
    return [d.code for d in assessment.diagnostics]


def test_datatypes_inform_the_question_lints() -> None:
    validator = Validator(autoload=False, block=["scoring"])
    assert "form_mismatch" not in _codes(
        validator, "SELECT ?n WHERE { wd:Q64 wdt:P1082 ?n }", "How many people live in Berlin?")
    assert "form_mismatch" in _codes(
        validator, "SELECT ?c WHERE { wd:Q64 wdt:P17 ?c }", "How many people live in Berlin?")
    assert "datatype_mismatch" in _codes(
        validator, "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }", "When was Douglas Adams born?")
    assert "datatype_mismatch" not in _codes(
        validator, "SELECT ?d WHERE { wd:Q42 wdt:P569 ?d }", "When was Douglas Adams born?")
    assert "datatype_mismatch" not in _codes(
        validator, "SELECT ?y WHERE { wd:Q42 p:P166 ?s . ?s pq:P585 ?y }", "When did he win it?")


def test_mismatches_are_demoted_below_candidates_without() -> None:
    question = "Which awards did Douglas Adams receive?"
    ask = "ASK { wd:Q42 wdt:P166 ?a }"
    select = "SELECT ?a WHERE { wd:Q42 wdt:P1411 ?a }"
    report = Validator(autoload=False, threshold=-1.0).validate(question, [ask, select])
    assert report.verdicts[0].candidate.sparql == select
    plain = Validator(Settings(demote_mismatches=False, threshold=-1.0), autoload=False)
    by_score = plain.validate(question, [ask, select])
    expected = max(by_score.verdicts, key=lambda v: v.score or 0.0).candidate.sparql
    assert by_score.verdicts[0].candidate.sparql == expected


def test_perturbations_change_the_meaning_and_stay_valid_sparql() -> None:
    gold = ("PREFIX wd: <http://www.wikidata.org/entity/> PREFIX wdt: <http://www.wikidata.org/prop/direct/> "
            "SELECT DISTINCT ?x WHERE { wd:Q42 wdt:P69 ?x . ?x wdt:P31 wd:Q3918 . } ORDER BY DESC(?x)")
    perturber = Perturber(shipped_properties(), [gold, "SELECT ?y { wd:Q5 wdt:P106 wd:Q1930187 }"])
    variants = perturber.variants(gold, random.Random(0))
    assert [v.kind for v in variants] == list(KINDS)
    validator = Validator(autoload=False, block=["scoring"])
    for variant, assessment in zip(variants, validator.check([v.sparql for v in variants]), strict=True):
        assert variant.sparql != gold
        assert assessment.valid, (variant, assessment.diagnostics)
    by_kind = {v.kind: v.sparql for v in variants}
    assert "wdt:P106" in by_kind["property"] or "wdt:P" in by_kind["property"]
    assert "ASK" in by_kind["form"] and "COUNT" in by_kind["count"] and "ASC" in by_kind["order"]


def test_noa_twins_pair_the_question_with_its_own_query(tmp_path: Path) -> None:
    rows = [{"uid": 7, "question": "What is the population of Ta Khmau?", "paraphrased_question": None,
             "sparql_wikidata": "SELECT ?p WHERE { wd:Q1948407 wdt:P1082 ?p }",
             "old_sparql_wikidata": "SELECT ?p WHERE { wd:Q42168 wdt:P1082 ?p }", "has_answer": False}]
    path = tmp_path / "noa.json"
    path.write_text(json.dumps(rows))
    (twin,) = load_examples(path)
    assert twin.sparql == rows[0]["sparql_wikidata"]
    assert twin.negative == rows[0]["old_sparql_wikidata"]
    (legacy,) = load_examples(path, twins="legacy")
    assert legacy.sparql == rows[0]["old_sparql_wikidata"]


def test_noa_twins_are_told_apart_by_what_they_swapped() -> None:
    from kgqa_validator.model.devsets import twin_kind

    assert twin_kind("SELECT ?p WHERE { wd:Q1948407 wdt:P1082 ?p }",
                     "SELECT ?p WHERE { wd:Q42168 wdt:P1082 ?p }") == "entity"
    assert twin_kind("SELECT ?x WHERE { ?x wdt:P279 wd:Q25403900 }",
                     "SELECT ?x WHERE { ?x wdt:P31 wd:Q25403900 }") == "property"


def test_the_development_slice_is_fixed_and_about_15_percent() -> None:
    keys = [f"qald10/train/train_{i}" for i in range(2000)]
    share = sum(in_development_slice(k) for k in keys) / len(keys)
    assert 0.12 < share < 0.18
    assert [in_development_slice(k) for k in keys[:50]] == [in_development_slice(k) for k in keys[:50]]


def test_labels_command_shows_label_and_datatype_offline() -> None:
    result = subprocess.run([sys.executable, "-m", "kgqa_validator.cli", "labels", "P19", "P1082"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["P19\tplace of birth\twikibase-item", "P1082\tpopulation\tquantity"]


@pytest.mark.parametrize("question", ["Where was Douglas Adams born?"])
def test_place_of_death_is_not_preferred_to_place_of_birth(question: str) -> None:
    report = Validator(autoload=False).validate(
        question, ["SELECT ?p WHERE { wd:Q42 wdt:P20 ?p }", "SELECT ?p WHERE { wd:Q42 wdt:P19 ?p }"])
    assert report.verdicts[0].candidate.sparql.endswith("wdt:P19 ?p }")


def test_evaluate_reads_the_noa_twins_with_the_labels_it_is_given(tmp_path: Path) -> None:
    from kgqa_validator.model.evaluate import build_sets

    # Entity twins (Q-ids 1000+i against 2000+i) and property twins, on enough uids that a
    # few fall in the development slice; labels name both swapped ids of the even entity twins.
    rows, labels = [], {}
    for i in range(60):
        entity = i % 3 != 0
        twin = f"SELECT ?p WHERE {{ wd:Q{1000 + i} wdt:P1082 ?p }}"
        old = (f"SELECT ?p WHERE {{ wd:Q{2000 + i} wdt:P1082 ?p }}" if entity
               else f"SELECT ?p WHERE {{ wd:Q{1000 + i} wdt:P2046 ?p }}")
        rows.append({"uid": i, "question": f"What is the population of town {i}?",
                     "sparql_wikidata": twin, "old_sparql_wikidata": old, "has_answer": False})
        if entity and i % 2 == 0:
            labels.update({f"Q{1000 + i}": f"town {i}", f"Q{2000 + i}": f"city {i}"})
    noa = tmp_path / "noa.json"
    noa.write_text(json.dumps(rows))
    test = tmp_path / "test.json"
    test.write_text(json.dumps(rows[:4]))
    sets = build_sets(test, None, labels, 200, noa=noa)
    plain = build_sets(test, None, {}, 200, noa=noa)
    assert "noa_twins_verbalised" not in plain
    twins = sets["noa_twins"][1]
    assert 0 < len(sets["noa_twins_entity"][1]) < len(twins)
    assert len(sets["noa_twins_verbalised"][1]) == len(twins)
    named = sets["noa_twins_entity_verbalised"][1]
    assert 0 < len(named) < len(sets["noa_twins_entity"][1])
    for question, (gold, wrong) in named:
        number = question.rsplit(" ", 1)[1].rstrip("?")
        assert f"town_{number}" in gold and f"city_{number}" in wrong  # labelized spelling
