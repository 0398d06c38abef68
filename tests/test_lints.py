"""The built-in lints (``kgqa_check`` and ``kgqa_check_question``): every code, where it points,
and the valid shapes that must not trigger them."""

from __future__ import annotations

import pytest

from kgqa_validator import Settings, Severity, Validator
from kgqa_validator.types import Assessment, Diagnostic

BLOCK = ["scoring", "execute", "endpoint_labels"]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(Settings(), autoload=False, block=BLOCK)


def check(validator: Validator, query: str, question: str = "") -> Assessment:
    (assessment,) = validator.check([query], question=question)
    return assessment


def only(diagnostics: tuple[Diagnostic, ...], code: str) -> Diagnostic:
    found = [d for d in diagnostics if d.code == code]
    assert len(found) == 1, diagnostics
    return found[0]


def codes(diagnostics: tuple[Diagnostic, ...]) -> list[str]:
    return [d.code for d in diagnostics]


# -- unbound_projection -----------------------------------------------------------------------


def test_unbound_projection(validator: Validator) -> None:
    assessment = check(validator, "SELECT ?x ?y\nWHERE { ?x wdt:P31 wd:Q5 }")
    error = only(assessment.diagnostics, "unbound_projection")
    assert error.severity is Severity.ERROR and error.producer == "lints"
    assert (error.line, error.column, error.excerpt) == (1, 11, "?y")
    assert not assessment.valid
    assert assessment.parsed.valid_syntax  # valid SPARQL, but it cannot answer anything


@pytest.mark.parametrize("query", [
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 FILTER(?y = 1) }",          # a FILTER binds nothing
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 OPTIONAL { ?x wdt:P21 ?z } }",
    "SELECT ?itemLabel WHERE { ?item wdt:P31 wd:Q5 }",              # no label service
    # MINUS and (NOT) EXISTS only remove solutions: a variable seen only there never binds.
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 MINUS { ?x wdt:P21 ?y } }",
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 FILTER NOT EXISTS { ?x wdt:P21 ?y } }",
    "SELECT ?x ?y WHERE { ?x wdt:P31 wd:Q5 FILTER(EXISTS { ?x wdt:P21 ?y }) }",
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 MINUS { ?x wdt:P21 ?z MINUS { ?z wdt:P1 ?y } } }",
])
def test_unbound_projection_shapes(validator: Validator, query: str) -> None:
    assert "unbound_projection" in codes(check(validator, query).diagnostics)


@pytest.mark.parametrize("query", [
    "SELECT ?x ?y WHERE { ?x wdt:P31 wd:Q5 } VALUES ?y { 1 2 }",
    "SELECT ?x ?n WHERE { ?x wdt:P31 wd:Q5 BIND(1 AS ?n) }",
    "SELECT ?x (STR(?x) AS ?s) WHERE { ?x wdt:P31 wd:Q5 }",
    "SELECT ?c WHERE { { SELECT (COUNT(?x) AS ?c) WHERE { ?x wdt:P31 wd:Q5 } } }",
    "SELECT ?x ?l WHERE { ?x wdt:P31 wd:Q5 OPTIONAL { ?x rdfs:label ?l } }",
    "SELECT ?k (COUNT(?x) AS ?n) WHERE { ?x wdt:P31 wd:Q5 } GROUP BY (STR(?x) AS ?k)",
    "SELECT ?x ?v WHERE { ?x wdt:P31 wd:Q5 { ?x wdt:P21 ?v } UNION { ?x wdt:P27 ?v } }",
    "SELECT ?item ?itemLabel ?itemDescription WHERE { ?item wdt:P31 wd:Q5 "
    'SERVICE wikibase:label { bd:serviceParam wikibase:language "en". } }',
    "SELECT * WHERE { ?x wdt:P31 wd:Q5 }",
    "SELECT ?value WHERE { wd:Q1 p:P6 ?s . ?s ps:P6 ?value . ?s pq:P585 ?t }",
    # Bound outside the negated group as well (the usual correlated MINUS / NOT EXISTS).
    "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 MINUS { ?x wdt:P21 wd:Q6581097 } }",
    "SELECT ?x ?y WHERE { ?x wdt:P31 wd:Q5 FILTER NOT EXISTS { ?x wdt:P21 ?z } ?x wdt:P19 ?y }",
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 MINUS { ?x wdt:P21 ?y } } VALUES ?y { 1 }",
    "SELECT ?y WHERE { ?x wdt:P31 wd:Q5 { SELECT ?y WHERE { ?y wdt:P31 wd:Q5 MINUS { ?y wdt:P21 ?q } } } }",
    # "minus" and "exists" as words of a language tag, not keywords.
    'SELECT ?x WHERE { ?s rdfs:label "a"@en-minus . OPTIONAL { ?s wdt:P31 ?x } }',
    'SELECT ?x WHERE { ?s rdfs:label "a"@exists . OPTIONAL { ?s wdt:P31 ?x } }',
])
def test_bound_projections_pass(validator: Validator, query: str) -> None:
    assessment = check(validator, query)
    assert assessment.valid, assessment.diagnostics


# -- aggregate_without_alias / ungrouped_variable -------------------------------------------------


def test_aggregate_without_alias(validator: Validator) -> None:
    error = only(check(validator, "SELECT COUNT(?x) WHERE { ?x wdt:P31 wd:Q5 }").diagnostics,
                 "aggregate_without_alias")
    assert (error.line, error.column, error.excerpt) == (1, 8, "COUNT(?x)")
    assert "AS ?name" in error.message


def test_ungrouped_variable(validator: Validator) -> None:
    assessment = check(validator, "SELECT ?x (COUNT(?y) AS ?c)\nWHERE { ?x wdt:P31 ?y }")
    error = only(assessment.diagnostics, "ungrouped_variable")
    assert (error.line, error.column, error.excerpt) == (1, 8, "?x")
    grouped = check(validator, "SELECT ?x (COUNT(?y) AS ?c) WHERE { ?x wdt:P31 ?y } GROUP BY ?x")
    assert grouped.valid, grouped.diagnostics


# -- external_service / dataset_clause --------------------------------------------------------------


def test_external_service_points_at_the_offending_service(validator: Validator) -> None:
    query = ("SELECT ?x ?xLabel WHERE {\n"
             "  SERVICE wikibase:label { bd:serviceParam wikibase:language \"en\" }\n"
             "  SERVICE <https://dbpedia.org/sparql> { ?x ?p ?o }\n}")
    error = only(check(validator, query).diagnostics, "external_service")
    assert (error.line, error.column) == (3, 3)
    assert error.excerpt == "SERVICE <https://dbpedia.org/sparql>"


def test_label_service_is_external_in_generic_mode() -> None:
    generic = Validator(Settings.for_mode("generic", {"wikibase": "http://wikiba.se/ontology#",
                                                      "bd": "http://www.bigdata.com/rdf#"}),
                        autoload=False, block=BLOCK)
    query = 'SELECT ?x WHERE { ?x ?p ?o SERVICE wikibase:label { bd:serviceParam ?p ?o } }'
    error = only(check(generic, query).diagnostics, "external_service")
    assert (error.column, error.excerpt) == (28, "SERVICE wikibase:label")


def test_dataset_clause_each_clause(validator: Validator) -> None:
    query = ("# rows from a named graph\nSELECT ?x FROM <http://example.org/a>\n"
             "FROM NAMED <http://example.org/b> WHERE { ?x wdt:P31 wd:Q5 }")
    found = [d for d in check(validator, query).diagnostics if d.code == "dataset_clause"]
    assert [(d.line, d.column, d.excerpt) for d in found] == [
        (2, 11, "FROM <http://example.org/a>"),
        (3, 1, "FROM NAMED <http://example.org/b>"),
    ]
    assert all(d.severity is Severity.ERROR for d in found)


# -- placeholder_leak / question_template / question_missing ----------------------------------------


def test_placeholder_leak_in_the_query(validator: Validator) -> None:
    # LC-QuAD 2.0 train uid 18212: the slot token survived into the query.
    query = "ASK WHERE { wd:Q3591475 wdt:P2630 ?obj filter(?obj = t1270953452) } "
    leak = only(check(validator, query).diagnostics, "placeholder_leak")
    assert leak.severity is Severity.ERROR
    assert (leak.line, leak.column, leak.excerpt) == (1, 54, "t1270953452")


def test_placeholder_in_a_comment_is_not_a_leak(validator: Validator) -> None:
    assert check(validator, "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 } # t1417656573").valid


def test_question_diagnostics(validator: Validator) -> None:
    report = validator.validate("What is the {country} for {head of state} of t1417656573?",
                                ["SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"])
    template = only(report.question_diagnostics, "question_template")
    assert (template.line, template.column, template.excerpt) == (1, 13, "{country}")
    leak = only(report.question_diagnostics, "placeholder_leak")
    assert (leak.column, leak.excerpt) == (46, "t1417656573")
    assert leak.severity is Severity.WARNING  # a question problem never invalidates a query
    assert report.verdicts[0].valid


@pytest.mark.parametrize("question", ["n/a", "None", " null ", '"NA"'])
def test_question_missing(validator: Validator, question: str) -> None:
    report = validator.validate(question, ["SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"])
    missing = only(report.question_diagnostics, "question_missing")
    assert missing.severity is Severity.WARNING
    assert validator.validate("Who is Douglas Adams?", ["SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"]
                              ).question_diagnostics == ()


# -- form_mismatch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "query", "column"), [
    ("Is Robert Zemeckis the director of Forrest Gump?",
     "SELECT ?x WHERE { wd:Q134773 wdt:P57 ?x }", 1),
    ("Who directed Forrest Gump?", "PREFIX ex: <http://example.org/select>\n"
     "ASK { wd:Q134773 wdt:P57 wd:Q187364 }", 1),
    ("How many children did Bach have?", "SELECT ?c WHERE { wd:Q1339 wdt:P40 ?c }", 1),
])
def test_form_mismatch(validator: Validator, question: str, query: str, column: int) -> None:
    mismatch = only(check(validator, query, question).diagnostics, "form_mismatch")
    assert mismatch.severity is Severity.WARNING
    assert mismatch.column == column
    assert mismatch.excerpt in ("SELECT", "ASK")
    assert mismatch.line == query.count("\n", 0, query.index(mismatch.excerpt + " ")) + 1


def test_form_mismatch_count_for_a_question_that_does_not_count(validator: Validator) -> None:
    # LC-QuAD 2.0 has such pairs: a count template verbalised as an ordinary question.
    query = "SELECT (COUNT(?obj) AS ?value) WHERE { wd:Q302 wdt:P1559 ?obj }"
    mismatch = only(check(validator, query, "What were the last words of Jesus Christ?").diagnostics,
                    "form_mismatch")
    assert (mismatch.severity, mismatch.line, mismatch.column, mismatch.excerpt) == (
        Severity.WARNING, 1, 1, "SELECT")
    assert "count" in mismatch.message
    for question in ("Tell me the number of words Jesus said", "What is the total of his words?",
                     "how much did he say?"):
        assert "form_mismatch" not in codes(check(validator, query, question).diagnostics), question
    # A count that is not the answer (ranking by a count) is not a mismatch.
    ranked = ("SELECT ?c (COUNT(?city) AS ?n) WHERE { ?city wdt:P17 ?c } GROUP BY ?c "
              "ORDER BY DESC(?n) LIMIT 1")
    assert "form_mismatch" not in codes(
        check(validator, ranked, "Which country has the most cities?").diagnostics)
    nested = "SELECT ?x WHERE { { SELECT (COUNT(?y) AS ?x) WHERE { ?y wdt:P31 wd:Q5 } } }"
    assert "form_mismatch" not in codes(check(validator, nested, "Who is it?").diagnostics)


@pytest.mark.parametrize(("question", "query"), [
    ("Is Robert Zemeckis the director of Forrest Gump?", "ASK { wd:Q134773 wdt:P57 wd:Q187364 }"),
    ("How many children did Bach have?",
     "SELECT (COUNT(?c) AS ?n) WHERE { wd:Q1339 wdt:P40 ?c }"),
    ("Who directed Forrest Gump?", "SELECT ?x WHERE { wd:Q134773 wdt:P57 ?x }"),
    ("", "ASK { wd:Q134773 wdt:P57 wd:Q187364 }"),
])
def test_form_matches(validator: Validator, question: str, query: str) -> None:
    assert "form_mismatch" not in codes(check(validator, query, question).diagnostics)


# How people phrase questions: the lints must not contradict the right query for it, since a
# contradicted candidate is rejected when one that fits ranks above it.
_SELECT_BIRTHPLACE = "SELECT ?x WHERE { wd:Q42 wdt:P19 ?x }"
_ASK_BIRTHPLACE = "ASK { wd:Q42 wdt:P19 wd:Q350 }"


@pytest.mark.parametrize("question", [
    "Can you tell me where Douglas Adams was born?",
    "Could you please tell me where Douglas Adams was born?",
    "Does anyone know where Douglas Adams was born?",
    "Do you know where Douglas Adams was born?",
    "Please tell me where Douglas Adams was born.",
    "I'd like to know where Douglas Adams was born",
    "Can you name the place Douglas Adams was born in?",
    "If you had to name one, where was Douglas Adams born?",
    "I was wondering if you could tell me where Douglas Adams was born?",
    "Tell me if you know where Douglas Adams was born",
    "Can you tell me if anyone knows where Douglas Adams was born?",
    "Hello! Can u kindly tell me where Douglas Adams was born?",
    "Would you mind telling me where Douglas Adams was born?",
    "Are you able to tell me where Douglas Adams was born?",
    "Do you guys remember where Douglas Adams was born?",
    "Can you help me find the place where Douglas Adams was born?",
])
def test_a_wh_question_behind_a_lead_in_is_no_yes_no_question(validator: Validator,
                                                              question: str) -> None:
    assert "form_mismatch" not in codes(check(validator, _SELECT_BIRTHPLACE, question).diagnostics)
    assert "form_mismatch" in codes(check(validator, _ASK_BIRTHPLACE, question).diagnostics)


@pytest.mark.parametrize("question", [
    "Tell me whether Douglas Adams was born in Cambridge.",
    "Could you tell me if Douglas Adams was born in Cambridge?",
    "Do you know whether Douglas Adams was born in Cambridge?",
    "Wasn't Douglas Adams born in Cambridge?",
    "Isn\u2019t Cambridge the birthplace of Douglas Adams?",
    "Didn't Douglas Adams come from Cambridge?",
    "Isnt Cambridge the birthplace of Douglas Adams?",
    "Would you say Douglas Adams was born in Cambridge?",
    "Can you find out if Douglas Adams was born in Cambridge?",
    "Hi, was Douglas Adams born in Cambridge?",
    "I'd like to know if Douglas Adams was born in Cambridge",
    "I'm wondering whether Douglas Adams was born in Cambridge",
    "Was Douglas Adams born in Cambridge or not?",
])
def test_yes_no_questions_in_their_other_phrasings(validator: Validator, question: str) -> None:
    assert "form_mismatch" not in codes(check(validator, _ASK_BIRTHPLACE, question).diagnostics)
    assert "form_mismatch" in codes(check(validator, _SELECT_BIRTHPLACE, question).diagnostics)


@pytest.mark.parametrize(("question", "query"), [
    # a measure, not a count of things
    ("How many years did Bach live?",
     "SELECT ?b ?d WHERE { wd:Q1339 wdt:P569 ?b ; wdt:P570 ?d }"),
    ("How many years did Bach live?",
     "SELECT ((YEAR(?d) - YEAR(?b)) AS ?years) WHERE { wd:Q1339 wdt:P569 ?b ; wdt:P570 ?d }"),
    ("How many kilometres long is the Nile?", "SELECT ?x WHERE { wd:Q3392 wdt:P2043 ?x }"),
    ("Can you tell me how many people live in Berlin?", "SELECT ?x WHERE { wd:Q64 wdt:P1082 ?x }"),
    ("How many goals did he score in total, summed over seasons?",
     "SELECT (SUM(?g) AS ?n) WHERE { wd:Q1 p:P1351 ?s . ?s ps:P1351 ?g }"),
])
def test_a_measure_is_no_count(validator: Validator, question: str, query: str) -> None:
    assert "form_mismatch" not in codes(check(validator, query, question).diagnostics)


def test_a_count_question_behind_a_lead_in_still_wants_a_count(validator: Validator) -> None:
    listed = "SELECT ?c WHERE { wd:Q1339 wdt:P40 ?c }"
    for question in ("Can you tell me how many children Bach had?",
                     "Could you count how many children Bach had?",
                     "How many times did Brazil win the World Cup?"):
        assert "form_mismatch" in codes(check(validator, listed, question).diagnostics), question
    # A date function that filters is no computed measure: the count is still missing.
    filtered = "SELECT ?f WHERE { ?f wdt:P577 ?d FILTER(YEAR(?d) = 2010) }"
    assert "form_mismatch" in codes(check(
        validator, filtered, "How many films were released in 2010?").diagnostics)


def test_an_alternative_question_asks_which_not_yes_or_no(validator: Validator) -> None:
    question = "Was Douglas Adams born in Cambridge or in London?"
    for query in (_SELECT_BIRTHPLACE, _ASK_BIRTHPLACE):
        assert "form_mismatch" not in codes(check(validator, query, question).diagnostics), query


@pytest.mark.parametrize("question", [
    "When Zinedine Zidane was born, what country was he in?",
    "When he was replaced by William Grenville, 1st Baron Grenville, what was his position?",
    "When it comes to aquatic locomotion, what are the uses for Ciliophora?",
    "In which century was the Hagia Sophia built?",
    "Which decade was the band formed in?",
    "When Obama was president who was the vice president?",
    "When Kennedy was shot, in which city was he?",
    "When Harry Met Sally was directed by whom?",
])
def test_a_when_clause_or_a_century_is_no_date_question(validator: Validator, question: str) -> None:
    query = "SELECT ?x WHERE { wd:Q1835 wdt:P19 ?x }"
    assert "datatype_mismatch" not in codes(check(validator, query, question).diagnostics)


@pytest.mark.parametrize("question", [
    "When was Zinedine Zidane born?", "Can you tell me when Zidane was born?",
    "In what year was Zidane born?", "On what date was Zidane born?",
    "When was Zidane, who played for Madrid, born?", "When did Zidane die, which year?",
    "When and where was Zidane born?", "When exactly was Zidane born?",
])
def test_date_questions_in_their_phrasings(validator: Validator, question: str) -> None:
    place = "SELECT ?x WHERE { wd:Q1835 wdt:P19 ?x }"
    date = "SELECT ?x WHERE { wd:Q1835 wdt:P569 ?x }"
    assert "datatype_mismatch" in codes(check(validator, place, question).diagnostics)
    assert "datatype_mismatch" not in codes(check(validator, date, question).diagnostics)


@pytest.mark.parametrize(("question", "query"), [
    # QALD has questions in other languages; the lints read English, so they stay silent.
    ("Was ist der Geburtsort von Douglas Adams?", _SELECT_BIRTHPLACE),
    ("Wurde Douglas Adams in Cambridge geboren?", _ASK_BIRTHPLACE),
    ("¿Nació Douglas Adams en Cambridge?", _ASK_BIRTHPLACE),
    ("Douglas Adams, born in Cambridge?", _ASK_BIRTHPLACE),
])
def test_a_question_the_lints_cannot_read_contradicts_nothing(validator: Validator, question: str,
                                                              query: str) -> None:
    assert "form_mismatch" not in codes(check(validator, query, question).diagnostics)
