"""Reason codes: why a pair is flagged (every code is documented in the README's "Dataset audit").

A pair's ``reasons`` are drawn from three sources:

* the validator's own diagnostics of severity error or warning, under their diagnostic code
  (``syntax_error``, ``update_operation``, ``unknown_prefix``, ``unbound_projection``,
  ``form_mismatch``, ``placeholder_leak``, ``unknown_id`` ...); the question's diagnostics
  likewise (``question_template``, ``question_missing``, and ``question_placeholder_leak`` for
  a leaked placeholder in the question);
* the pair itself (:data:`PAIR_REASONS`): a missing question, a paraphrase identical to the
  question or not matching the query, a low question/query score, execution results;
* the dataset (:data:`GROUP_REASONS`, from :mod:`kgqa_validator.audit.groups`): the same query
  with different questions, the same question with different queries, repeated pairs.

Reasons are listed in a fixed order (:func:`ordered`) so that output is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kgqa_validator.parsing.lexer import SPARQL_WORDS, tokenize

UNREADABLE = "unreadable_record"
AUDIT_FAILED = "audit_failed"
QUESTION_MISSING = "question_missing"
QUESTION_TEMPLATE = "question_template"
QUESTION_PLACEHOLDER = "question_placeholder_leak"
PARAPHRASE_IDENTICAL = "paraphrase_identical"
PARAPHRASE_MISMATCH = "paraphrase_mismatch"
PARAPHRASE_MISSING = "paraphrase_missing"
LOW_SCORE = "low_score"
DUPLICATE_QUERY = "duplicate_query"
DUPLICATE_QUESTION = "duplicate_question"
DUPLICATE_PAIR = "duplicate_pair"
EXECUTION_ERROR = "execution_error"
EMPTY_RESULT = "empty_result"
ANSWER_MISMATCH = "answer_mismatch"

PAIR_REASONS = {
    UNREADABLE: "the record could not be read (not an object, no query string, broken line)",
    AUDIT_FAILED: "auditing this record raised an error (a bug or a plugin's; see 'error')",
    QUESTION_MISSING: 'the question is null, empty or a placeholder ("n/a", "None", ...)',
    QUESTION_TEMPLATE: "the question still has {slot} braces: it was never verbalised",
    QUESTION_PLACEHOLDER: "a leaked template token (t1417656573) in the question",
    PARAPHRASE_IDENTICAL: "the paraphrase is the question again (case and punctuation aside)",
    PARAPHRASE_MISSING: 'the paraphrase field holds a placeholder ("n/a", "[]", ...)',
    PARAPHRASE_MISMATCH: "the paraphrase scores below the threshold against the query",
    LOW_SCORE: "the question scores below the threshold against the query: a likely mismatch",
    EXECUTION_ERROR: "--execute: the endpoint failed, refused or timed out on the query",
    EMPTY_RESULT: "--execute: the query returns nothing",
    ANSWER_MISMATCH: "--execute: the answers differ from the gold answers (F1 < 1)",
}
GROUP_REASONS = {
    DUPLICATE_QUERY: "the same query (normalised) is paired with different questions elsewhere",
    DUPLICATE_QUESTION: "the same question (normalised) is paired with different queries elsewhere",
    DUPLICATE_PAIR: "the same question and query appear again in another record",
}
# What the validator's diagnostics mean, for the summary and the report (README: Diagnostics).
DIAGNOSTIC_MEANINGS = {
    "syntax_error": "the query is not SPARQL 1.1",
    "update_operation": "an update (INSERT/DELETE/...), not a query",
    "unknown_prefix": "a prefix that is neither declared nor pre-declared",
    "unbound_projection": "a selected variable the WHERE clause never binds",
    "placeholder_leak": "a leaked template token (t1417656573) in the query",
    "unknown_id": "an id (entity or property) that does not exist",
    "form_mismatch": "the query's form does not fit the question (yes/no, how many)",
    "aggregate_without_alias": "an aggregate selected without AS ?name",
    "ungrouped_variable": "a selected variable neither grouped nor aggregated",
    "external_service": "a SERVICE call to another endpoint",
    "dataset_clause": "FROM / FROM NAMED: would make the endpoint load a graph",
    "too_large": "the query is over the size limit",
    "too_deep": "brackets nested too deeply",
    "invalid_character": "a character that cannot be in a query",
    "parse_timeout": "the parse was cut off: the query could not be validated",
    "parse_failed": "the parser process died on this query",
}
# Execution diagnostics of the validator that count as an execution error.
EXECUTION_ERROR_CODES = frozenset({"endpoint_timeout", "endpoint_rejected", "invalid_response",
                                   "execution_refused", "endpoint_error"})
# Question diagnostics renamed so that a question's problem is not read as the query's.
QUESTION_CODES = {"placeholder_leak": QUESTION_PLACEHOLDER}

_ORDER = [UNREADABLE, AUDIT_FAILED, "syntax_error", "update_operation", "unknown_prefix",
          "unbound_projection", "placeholder_leak", "unknown_id", "form_mismatch",
          QUESTION_MISSING, QUESTION_TEMPLATE, QUESTION_PLACEHOLDER, LOW_SCORE,
          PARAPHRASE_MISMATCH, PARAPHRASE_IDENTICAL, PARAPHRASE_MISSING, DUPLICATE_QUERY,
          DUPLICATE_QUESTION, DUPLICATE_PAIR, EXECUTION_ERROR, EMPTY_RESULT, ANSWER_MISMATCH]
_RANK = {code: i for i, code in enumerate(_ORDER)}

_MISSING = frozenset({"", "n/a", "na", "none", "null", "nil", "nan", "[]", "{}", "-", "--", "?",
                      "tbd", "todo", "x"})


def ordered(reasons: Iterable[str]) -> list[str]:
    """Distinct reasons in the documented order; unknown codes (a plugin's) after, by name."""
    return sorted(set(reasons), key=lambda r: (_RANK.get(r, len(_RANK)), r))


def is_missing(text: str | None) -> bool:
    """Whether a question (or paraphrase) is absent: null, blank or a placeholder word."""
    if text is None:
        return True
    return text.strip().strip("\"'").strip().lower() in _MISSING


_NON_WORD = re.compile(r"\W+")


def normalise_question(text: str) -> str:
    """Case, punctuation and spacing folded: "Who is X?" and "who is x" are one question."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


def normalise_query(text: str) -> str:
    """The query with spacing, comments, keyword case and variable names folded.

    Two queries with the same normal form differ only in layout, ``select``/``SELECT`` and the
    names of their variables (renamed ``?v1``, ``?v2`` ... in order of appearance).
    """
    names: dict[str, str] = {}
    parts = []
    for token in tokenize(text):
        if token.kind in ("ws", "comment"):
            continue
        if token.kind == "var":
            name = token.text[1:]
            parts.append(names.setdefault(name, f"?v{len(names) + 1}"))
        elif token.kind == "word" and token.upper in SPARQL_WORDS:
            parts.append(token.upper)
        else:
            parts.append(token.text)
    return " ".join(parts)
