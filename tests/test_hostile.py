"""Hostile input: every case gets its diagnostic (or its verdict) quickly, and the caller's
process survives.

The wall-time bound asserted here (5 s) is only a guard against hangs; the issue's 2 s target
is a timing question for the benchmarks.  Each test goes through the same worker pool, so a
parse that crashed or ran away would show up in the next test too.
"""

from __future__ import annotations

import time

import pytest

from kgqa_validator import Settings, Validator
from kgqa_validator.parsing.guard import WALL_CAP_FACTOR
from kgqa_validator.types import Assessment

HANG_GUARD_S = 5.0
BLOCK = ["scoring", "execute", "endpoint_labels"]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(Settings(), autoload=False, block=BLOCK)


def timed(validator: Validator, query: str, question: str = "") -> Assessment:
    start = time.monotonic()
    (assessment,) = validator.check([query], question)
    elapsed = time.monotonic() - start
    assert elapsed < HANG_GUARD_S, f"took {elapsed:.1f} s"
    # The pool still answers: nothing crashed or stayed stuck.
    (after,) = validator.check(["SELECT ?x WHERE { ?x wdt:P31 wd:Q5 }"])
    assert after.valid
    return assessment


def codes(assessment: Assessment) -> list[str]:
    return [d.code for d in assessment.diagnostics]


def nest(open_: str, close: str, depth: int, inner: str) -> str:
    return open_ * depth + inner + close * depth


_QUERY = "SELECT * WHERE { ?s ?p ?o } "
CASES = {
    "10 MB query": ("SELECT * WHERE { ?s ?p ?o } #" + "x" * 10_000_000, "too_large"),
    "10 MB of patterns": ("SELECT * WHERE { " + "?s ?p ?o . " * 1_000_000 + "}", "too_large"),
    "1,000-deep {}": ("SELECT * WHERE " + nest("{ ", " }", 1000, "?s ?p ?o"), "too_deep"),
    "1,000-deep ()": ("SELECT * WHERE { ?s ?p ?o FILTER" + nest("(", ")", 1000, "?o") + " }",
                      "too_deep"),
    "1,000-deep OPTIONAL": ("SELECT * WHERE { " + nest("OPTIONAL { ?s ?p ?o ", "}", 1000, "")
                            + " }", "too_deep"),
    "1,000-deep sub-SELECT": ("SELECT * WHERE " + nest("{ SELECT * WHERE ", " }", 1000,
                                                       "{ ?s ?p ?o }"), "too_deep"),
    "5,000-deep {}": ("SELECT * WHERE " + nest("{", "}", 5000, "?s ?p ?o"),
                                           "too_deep"),
    "NUL": ('SELECT * WHERE { ?s ?p "\x00" }', "invalid_character"),
    "lone high surrogate": ('SELECT * WHERE { ?s ?p "\ud83d" }', "invalid_character"),
    "lone low surrogate": ("SELECT * WHERE { ?s ?p \udc00 }", "invalid_character"),
    "noncharacter": ("SELECT * WHERE { ?s ?p '\uffff' }", "invalid_character"),
    # Found by fuzzing: rdflib raised TypeError, ValueError on these.
    "SELECT?l{-.5": ("SELECT?l{-.5", "syntax_error"),
    "escaped code point past U+10FFFF": ('SELECT * WHERE { ?s ?p "\\U00110000" }',
                                         "syntax_error"),
    "unknown prefix without PREFIX": ("SELECT * WHERE { ?s nope:p ?o }", "unknown_prefix"),
    "update": ("DELETE WHERE { ?s ?p ?o }", "update_operation"),
    # Issue 8: quadratic in the old lexer (99,900 x é took 219 s), each up to the size limit.
    "99,900 x é": ("SELECT * WHERE { ?s ?p ?o } " + "é" * 99_900, "syntax_error"),
    "a.a. to the size limit": (_QUERY + "a." * ((100_000 - len(_QUERY)) // 2), "syntax_error"),
    "a-a- to the size limit": (_QUERY + "a-" * ((100_000 - len(_QUERY)) // 2), "syntax_error"),
    "a:a. to the size limit": (_QUERY + "a:a." * ((100_000 - len(_QUERY)) // 4), "syntax_error"),
    "?a?a to the size limit": (_QUERY + "?a" * ((100_000 - len(_QUERY)) // 2), "syntax_error"),
    "<a<a to the size limit": (_QUERY + "<a" * ((100_000 - len(_QUERY)) // 2), "syntax_error"),
    "open long strings to the size limit": (_QUERY + "'''\\'" * ((100_000 - len(_QUERY)) // 5),
                                            "syntax_error"),
    "5,000-digit LIMIT": (_QUERY + "LIMIT " + "9" * 5000, "syntax_error"),
    "9,000-character invalid object list": (
        "SELECT * WHERE { ?s wdt:P31 " + ", ".join(f"wd:Q{i}" for i in range(1200)) + " , }",
        "syntax_error"),
    "12,000 unbound variables": (
        "SELECT ?s " + " ".join(f"?v{i}" for i in range(12_000)) + " WHERE { ?s ?p ?o }",
        "unbound_projection"),
    # Issue 8, critical: clauses hidden from the old lexer by a code point escape.
    "escaped IRI hides SERVICE": (
        "SELECT ?s WHERE { ?s a <http://wikiba.se/ontolog\\u0079#Property> . "
        "SERVICE <http://127.0.0.1:9/x> { ?s ?b ?c }\n}", "external_service"),
    "bracket in an escaped SERVICE IRI": (
        "SELECT ?s WHERE { SERVICE <http://127.0.0.1:9/\\u0073vc(> { ?s ?p ?o } }",
        "external_service"),
    "escaped IRI hides FROM": (
        "DESCRIBE ?s <http://x/\\u0041#> FROM <http://127.0.0.1:9/g> WHERE { ?s ?p ?o }",
        "dataset_clause"),
    "escaped SERVICE keyword": (
        "SELECT * WHERE { \\u0053ERVICE <http://127.0.0.1:9/x> { ?s ?p ?o } }", "ambiguous_escape"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_diagnosed(validator: Validator, name: str) -> None:
    query, code = CASES[name]
    assessment = timed(validator, query)
    assert not assessment.valid
    assert code in codes(assessment), assessment.diagnostics


VALID_CASES = {
    # rdflib recursed past the interpreter's limit on these (found by fuzzing); they are valid.
    "nested SERVICE": "SELECT * WHERE { " + nest("SERVICE wikibase:label { ", " }", 30,
                                                  "?s ?p ?o") + " }",
    "FILTER parentheses > 24": "SELECT * WHERE { ?s ?p ?o FILTER" + nest("(", ")", 40, "?o") + " }",
    "OPTIONAL > 35": "SELECT * WHERE { " + nest("OPTIONAL { ?s ?p ?o ", "}", 40, "") + " }",
    "{} > 36": "SELECT * WHERE " + nest("{ ", " }", 50, "?s ?p ?o"),
    "sub-SELECT": "SELECT * WHERE " + nest("{ SELECT * WHERE ", " }", 30, "{ ?s ?p ?o }"),
    "flat triple patterns > 84": "SELECT * WHERE { "
    + " . ".join(f"?s{i} wdt:P31 ?o{i}" for i in range(500)) + " }",
    # Quadratic in rdflib, super-linear in pyoxigraph's planner: 3,000 objects.
    "3,000-element object list": "SELECT * WHERE { ?s wdt:P31 "
    + ", ".join(f"wd:Q{i}" for i in range(3000)) + " }",
    "3,000-element object list, projected": "SELECT ?s WHERE { ?s wdt:P31 "
    + ", ".join(f"wd:Q{i}" for i in range(3000)) + " }",
    "catastrophic REGEX (never evaluated)": 'SELECT ?s WHERE { ?s rdfs:label ?l '
    'FILTER(REGEX(?l, "^(a+)+$")) }',
}


@pytest.mark.parametrize("name", list(VALID_CASES))
def test_hostile_but_valid_input_is_accepted(validator: Validator, name: str) -> None:
    assessment = timed(validator, VALID_CASES[name])
    assert assessment.valid, assessment.diagnostics


QUESTION_CASES = {
    # The label boilerplate at scale: the scoring text and the question lints read every
    # candidate, also one the parser refused, so each must stay linear in its tokens.
    "11,500 nested FILTER( on a label": "SELECT ?x ?l WHERE { ?x rdfs:label ?l "
    + "FILTER(" * 11_500 + "?l" + ")" * 11_500 + "}",
    "3,800 nested label SERVICE blocks": "SELECT * WHERE { " + "SERVICE wikibase:label { " * 3_800
    + "}" * 3_800 + "}",
    "3,000 nested label OPTIONALs": "SELECT ?x WHERE { ?x wdt:P31 wd:Q5 "
    + "OPTIONAL { ?x rdfs:label ?l FILTER(LANG(?l) = 'en') " * 3_000 + "}" * 3_000 + "}",
    "6,000 projected variables": "SELECT " + " ".join(f"?v{i}" for i in range(6_000))
    + " WHERE { VALUES (" + " ".join(f"?v{i}" for i in range(6_000)) + ") { ("
    + " 1" * 6_000 + ") } }",
}


@pytest.mark.parametrize("name", [*CASES, *VALID_CASES, *QUESTION_CASES])
def test_hostile_input_with_a_question(validator: Validator, name: str) -> None:
    # With a question the lints also read the ids and the label boilerplate of every candidate.
    query = CASES[name][0] if name in CASES else VALID_CASES.get(name) or QUESTION_CASES[name]
    assessment = timed(validator, query, "How many people were born in Paris?")
    assert assessment.valid == (name in VALID_CASES) or name in QUESTION_CASES


def test_a_batch_of_hostile_input(validator: Validator) -> None:
    queries = [q for q, _ in CASES.values()] + list(VALID_CASES.values())
    start = time.monotonic()
    assessments = validator.check(queries)
    # A hang guard for some fifty inputs, a dozen of them at the size limit.
    assert time.monotonic() - start < 8 * HANG_GUARD_S
    assert [a.valid for a in assessments] == [False] * len(CASES) + [True] * len(VALID_CASES)


def test_depth_beyond_the_limit_does_not_crash_the_parser() -> None:
    # With the depth limit lifted, 20,000-deep nesting reaches both parsers: pyoxigraph runs on
    # a large stack and rdflib's recursion error is caught, so the worker answers.
    unlimited = Validator(Settings(max_depth=10**6), autoload=False, block=BLOCK)
    assessment = timed(unlimited, "SELECT ?x WHERE " + nest("{", "}", 20_000, "?x ?p ?o"))
    assert assessment.valid, assessment.diagnostics


@pytest.mark.parametrize("workers", [1, 2])
def test_a_runaway_parse_in_a_batch_costs_only_its_own_time(workers: int) -> None:
    # The short CONSTRUCT form with FROM reaches pyoxigraph's super-linear query planner.
    objects = ", ".join(f"<http://example.org/o{i}>" for i in range(400))
    slow = "CONSTRUCT FROM <http://example.org/g> WHERE { ?s <http://example.org/p> " + objects + " }"
    queries = [f"SELECT ?x WHERE {{ ?x wdt:P31 wd:Q{i} }}" for i in range(40)]
    queries.insert(17, slow)
    validator = Validator(Settings(parse_workers=workers), autoload=False, block=BLOCK)
    start = time.monotonic()
    assessments = validator.check(queries)
    # The parse limit counts CPU time, so a busy machine stretches it (up to a wall-time cap).
    assert time.monotonic() - start < HANG_GUARD_S + WALL_CAP_FACTOR * 1.5
    assert "parse_timeout" in codes(assessments[17])
    others = [a for i, a in enumerate(assessments) if i != 17]
    assert all(a.valid for a in others)
    # Every answer belongs to its own query, in order.
    assert [a.parsed.text for a in assessments] == queries
