"""The hook contract of kgqa-validator: every stage of the pipeline is one hook here.

The pipeline, in the order :class:`~kgqa_validator.validator.Validator` calls it::

    kgqa_prefixes        -> extra PREFIX declarations for the mode            (all results merged)
    kgqa_parse           -> ParsedQuery per candidate                         (first result)
    kgqa_check           -> diagnostics per candidate (lints)                 (all results)
    kgqa_check_question  -> diagnostics about the question itself             (all results)
    kgqa_resolve_labels  -> id -> English label                               (all results merged)
    kgqa_score           -> one Score per candidate, from each scorer         (all results)
    kgqa_combine_scores  -> one number per candidate from all scorers' Scores (first result)
    kgqa_execute         -> Execution of a candidate on an endpoint           (first result)
    kgqa_decide          -> Verdicts, ranked best first                       (first result)

Hooks are always called with keyword arguments.  Every value crossing a hook is a frozen
dataclass from :mod:`kgqa_validator.types` (or a plain mapping/sequence of them).  Built-in
implementations are registered ``trylast`` so that any installed plugin runs first.  A
first-result hook stops at the first non-``None`` result; return ``None`` (never ``[]``) to
pass.  Per-candidate problems are :class:`~kgqa_validator.types.Diagnostic` values; raise only
for infrastructure failures, with an exception from :mod:`kgqa_validator.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pluggy

from kgqa_validator.config import Settings
from kgqa_validator.types import (
    Assessment,
    Candidate,
    Diagnostic,
    Execution,
    Mode,
    ParsedQuery,
    Question,
    Score,
    Verdict,
)

PROJECT = "kgqa_validator"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def kgqa_prefixes(mode: Mode) -> Mapping[str, str] | None:
    """Prefix declarations to add for every candidate in ``mode``.

    All results are merged (a user's explicit prefixes win over plugins').

    :param mode: the validator's mode (Wikidata or generic endpoint).
    """


@hookspec(firstresult=True)
def kgqa_parse(candidates: Sequence[Candidate], settings: Settings) -> Sequence[ParsedQuery] | None:
    """Normalise and parse candidates; one :class:`ParsedQuery` per candidate, same order.

    Stops at first non-None result.  The built-in parser decides validity with a strict
    SPARQL 1.1 parser, extracts structure with rdflib, and never raises for a bad candidate:
    problems are diagnostics in the result.  It must return within the settings' time limits.

    :param candidates: the candidates of one request (batched so a parser can parallelise).
    :param settings: prefixes, limits and mode.
    """


@hookspec
def kgqa_check(
    question: Question, candidate: Candidate, parsed: ParsedQuery, settings: Settings
) -> Sequence[Diagnostic] | None:
    """Lint one parsed candidate; return its diagnostics (or ``None``/empty for none).

    All results are collected.  A diagnostic of severity ``error`` makes the candidate
    invalid.

    :param question: the user's question (its ``text`` may be empty).
    :param candidate: the candidate as given.
    :param parsed: what ``kgqa_parse`` produced for it.
    :param settings: the validator's settings.
    """


@hookspec
def kgqa_check_question(question: Question, settings: Settings) -> Sequence[Diagnostic] | None:
    """Diagnostics about the question itself (e.g. a leaked template). All results collected.

    :param question: the user's question.
    :param settings: the validator's settings.
    """


@hookspec
def kgqa_resolve_labels(ids: Sequence[str], settings: Settings) -> Mapping[str, str] | None:
    """English labels for Wikidata ids (``"Q42" -> "Douglas Adams"``).

    All results are merged; a plugin called earlier wins for an id two sources know.  Ids a
    source does not know are simply absent.

    :param ids: ids the candidates use, without duplicates.
    :param settings: the validator's settings.
    """


@hookspec
def kgqa_score(
    question: Question,
    candidates: Sequence[Candidate],
    texts: Sequence[str],
    settings: Settings,
) -> Sequence[Score] | None:
    """Score candidates against the question: one :class:`Score` per candidate, same order.

    All scorers' results are collected and handed to ``kgqa_combine_scores``.  Return
    ``None`` to abstain (e.g. no model available).

    :param question: the user's question.
    :param candidates: the valid candidates to score.
    :param texts: the text of each candidate as the scorers should read it (verbalised with
        labels where labels are known).
    :param settings: the validator's settings.
    """


@hookspec(firstresult=True)
def kgqa_combine_scores(
    scores: Sequence[Sequence[Score]], settings: Settings
) -> Sequence[Score] | None:
    """Combine several scorers' results into one Score per candidate.

    Stops at first non-None result.  ``scores[k][i]`` is scorer ``k``'s score of candidate
    ``i``.  The built-in takes the single scorer as is, the mean of several, and blends a
    ``consensus`` score into the encoder's without changing any verdict
    (:mod:`kgqa_validator.builtin.combine`).

    :param scores: every scorer's scores.
    :param settings: the validator's settings.
    """


@hookspec(firstresult=True)
def kgqa_execute(candidate: Candidate, parsed: ParsedQuery, settings: Settings) -> Execution | None:
    """Run a candidate on the configured endpoint and report what it returned.

    Stops at first non-None result.  An executor must refuse (``status="refused"``, no
    request) anything but a read-only query without SERVICE/FROM.

    :param candidate: the candidate to run.
    :param parsed: its parse, for the refusal rules.
    :param settings: endpoint, executor, timeout, contact.
    """


@hookspec(firstresult=True)
def kgqa_decide(
    question: Question, assessments: Sequence[Assessment], settings: Settings
) -> Sequence[Verdict] | None:
    """Accept or reject each candidate and rank them, best first.

    Stops at first non-None result.

    :param question: the user's question.
    :param assessments: each candidate with its diagnostics, scores and execution.
    :param settings: the validator's settings (threshold override among them).
    """
