"""Built-in decision: reject what is invalid or scores below the threshold, rank the rest.

The rule, in order:

1. a candidate with an ``error`` diagnostic is rejected;
2. a candidate whose execution the endpoint rejected (``endpoint_rejected``) or whose
   answer was unusable (``invalid_response``) is rejected;
3. a candidate scoring below the threshold is rejected with a ``below_threshold`` diagnostic;
4. the rest are accepted.

Ranking: accepted before rejected, valid before invalid, then (with
``settings.demote_mismatches``, the default) a candidate without a ``form_mismatch`` or
``datatype_mismatch`` warning before one with (an ASK for a "which" question, a place for a
"when" question: the question itself says the candidate is wrong, whatever its score), then by
score (highest first), then by input order (the ranking is stable).  When candidates were
executed, an accepted candidate with a non-empty answer moves ahead of accepted candidates
with an empty answer whose score is at most ``EXECUTION_MARGIN`` higher: close scores are a
coin toss, an empty answer is evidence (but never ahead of a candidate the question does
not contradict, when the candidate that moves is contradicted).
Without a scorer, valid candidates come before invalid ones in input order.

Then (``settings.reject_outranked``, the default) an accepted candidate that is a *near
variant* of a better-ranked accepted candidate is rejected as ``outranked``: their
structural forms (:mod:`kgqa_validator.structure_key`: PREFIX-free, variables renamed) have
the same tokens but for one or two (``MAX_SUBSTITUTIONS``) substituted ones: another entity,
another property, a literal, subject and object swapped, ASC for DESC.  Two such queries ask
different things of the same shape, so at most one answers the question, and the ranking
already says which (candidates without a score, when no scorer ran, are never compared).
Copies of the same query are not outranked by each other, and a
candidate that adds or drops anything (DISTINCT, a triple, COUNT, a property path) is not a
near variant: it may be an equally right way to ask.  Under the same switch, and with
``settings.demote_mismatches``, an accepted candidate the question contradicts (a mismatch
warning) is ``outranked`` by a better-ranked accepted candidate the question does not
contradict: the demotion already ranks it behind, and a candidate that fits the question's
form is there to take its place.  When every accepted candidate carries a mismatch, none is
rejected for it (the lint may be wrong about the question, and something must answer).  An
outranked candidate loses its ``accepted_by_consensus`` note: it is no longer accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from kgqa_validator.builtin.combine import ACCEPTED_BY_CONSENSUS
from kgqa_validator.config import Settings
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.types import Assessment, Decision, Diagnostic, Question, Severity, Verdict

PRODUCER = "decide"
MISMATCHES = frozenset({"form_mismatch", "datatype_mismatch"})
"""Diagnostic codes that demote a candidate (``Settings.demote_mismatches``)."""
EXECUTION_MARGIN = 0.05
MAX_SUBSTITUTIONS = 2  # a subject/object swap substitutes two tokens
MAX_KEPT = 64  # accepted candidates each one is compared with: bounded work on 1,000
_REJECTING_EXECUTION = {"rejected", "invalid_response", "refused"}


def _decide_one(assessment: Assessment, settings: Settings) -> tuple[Decision, tuple[Diagnostic, ...]]:
    diagnostics = assessment.diagnostics
    if not assessment.valid:
        return Decision.REJECTED, diagnostics
    execution = assessment.execution
    if execution is not None and execution.status in _REJECTING_EXECUTION:
        return Decision.REJECTED, diagnostics
    threshold = settings.threshold if settings.threshold is not None else assessment.threshold
    if assessment.score is not None and threshold is not None and assessment.score < threshold:
        note = Diagnostic(
            "below_threshold", Severity.WARNING,
            f"score {assessment.score:.3f} is below the rejection threshold {threshold:.3f}: "
            "the query does not seem to answer the question", producer=PRODUCER)
        return Decision.REJECTED, (*diagnostics, note)
    if assessment.score_detail == ACCEPTED_BY_CONSENSUS:
        note = Diagnostic(
            "accepted_by_consensus", Severity.INFO,
            "the encoder scored every candidate below its threshold; this one is kept because "
            "the other candidates agree with it most", producer=PRODUCER)
        return Decision.ACCEPTED, (*diagnostics, note)
    return Decision.ACCEPTED, diagnostics


def demoted(assessment: Assessment) -> bool:
    """Whether the question contradicts the candidate (a mismatch warning)."""
    return any(d.code in MISMATCHES for d in assessment.diagnostics)


def _has_answer(assessment: Assessment) -> bool:
    execution = assessment.execution
    return execution is not None and execution.status == "ok"


@hookimpl(trylast=True)
def kgqa_decide(
    question: Question, assessments: Sequence[Assessment], settings: Settings
) -> Sequence[Verdict]:
    decided = [(a, *_decide_one(a, settings)) for a in assessments]

    def key(item: tuple[Assessment, Decision, tuple[Diagnostic, ...]]) -> tuple[int, int, int, float, int]:
        assessment, decision, _ = item
        score = assessment.score if assessment.score is not None else float("-inf")
        return (decision is not Decision.ACCEPTED, not assessment.valid,
                settings.demote_mismatches and demoted(assessment), -score, assessment.candidate.index)

    ordered = sorted(decided, key=key)
    accepted = [d for d in ordered if d[1] is Decision.ACCEPTED]
    rejected = [d for d in ordered if d[1] is not Decision.ACCEPTED]
    if any(d[0].execution is not None for d in accepted):
        accepted = _prefer_answers(accepted, settings)
    if settings.reject_outranked and len(accepted) > 1:
        accepted, outranked = _outrank(accepted, settings)
        rejected = outranked + rejected
    ordered = accepted + rejected
    return [
        Verdict(a.candidate, decision, rank, a.valid, a.score, diags, a.execution, PRODUCER)
        for rank, (a, decision, diags) in enumerate(ordered, 1)
    ]


def _prefer_answers(
    accepted: list[tuple[Assessment, Decision, tuple[Diagnostic, ...]]], settings: Settings,
) -> list[tuple[Assessment, Decision, tuple[Diagnostic, ...]]]:
    result = list(accepted)
    for i in range(len(result)):
        best = result[i]
        if _has_answer(best[0]) or best[0].score is None:
            continue
        for j in range(i + 1, len(result)):
            rival = result[j]
            if rival[0].score is None or best[0].score - rival[0].score > EXECUTION_MARGIN:
                break
            # An answer does not undo what the question says: a contradicted candidate stays
            # behind one that fits, answer or not.
            if settings.demote_mismatches and demoted(rival[0]) and not demoted(best[0]):
                break
            if _has_answer(rival[0]):
                result.insert(i, result.pop(j))
                break
    return result


def near_variant(a: Sequence[str], b: Sequence[str]) -> int:
    """How many tokens two structural forms substitute (0 when they are not near variants:
    the same query, different lengths, more than ``MAX_SUBSTITUTIONS``, or only variables
    trading places, as in ``SELECT ?a ?b`` against ``SELECT ?b ?a``, which ask the same)."""
    if len(a) != len(b):
        return 0
    differing = []
    for x, y in zip(a, b, strict=True):
        if x != y:
            differing.append((x, y))
            if len(differing) > MAX_SUBSTITUTIONS:
                return 0
    if all(x.startswith("?") and y.startswith("?") for x, y in differing):
        return 0
    return len(differing)


def _outrank(
    accepted: list[tuple[Assessment, Decision, tuple[Diagnostic, ...]]], settings: Settings,
) -> tuple[list[tuple[Assessment, Decision, tuple[Diagnostic, ...]]],
           list[tuple[Assessment, Decision, tuple[Diagnostic, ...]]]]:
    """Split the accepted candidates (best first) into those kept and those outranked."""
    from kgqa_validator.structure_key import structure

    kept: list[tuple[Assessment, Decision, tuple[Diagnostic, ...]]] = []
    seen: list[tuple[int, Sequence[str], float]] = []  # (rank among kept, tokens, score)
    outranked = []
    fitting: int | None = None  # rank among kept of the best candidate without a mismatch
    for item in accepted:
        if item[0].score is None:  # no scorer: input order is no evidence of which is right
            kept.append(item)
            continue
        mismatched = settings.demote_mismatches and demoted(item[0])
        if mismatched and fitting is not None:
            codes = sorted({d.code for d in item[0].diagnostics if d.code in MISMATCHES})
            note = Diagnostic(
                "outranked", Severity.WARNING,
                f"the question contradicts this candidate ({', '.join(codes)}) and not the "
                f"candidate ranked {fitting}, which ranks higher", producer=PRODUCER)
            outranked.append((item[0], Decision.REJECTED, (*_kept_notes(item[2]), note)))
            continue
        form = structure(item[0].candidate.sparql, settings.prefixes)
        # The label boilerplate (language lists, label variables) says nothing about what is asked.
        tokens = [t for t, d in zip(form.tokens, form.decoration, strict=True) if not d]
        score = item[0].score
        # Only a strictly better score outranks: on a tie, input order would decide.
        better = next(((rank, n) for rank, other, other_score in seen[:MAX_KEPT]
                       if other_score > score and (n := near_variant(tokens, other))), None)
        if better is None:
            seen.append((len(kept) + 1, tokens, score))
            kept.append(item)
            if fitting is None and not mismatched:
                fitting = len(kept)
            continue
        rank, substituted = better
        terms = "one term" if substituted == 1 else f"{substituted} terms"
        note = Diagnostic(
            "outranked", Severity.WARNING,
            f"the candidate ranked {rank} is the same query but for {terms} and ranks "
            "higher: both cannot answer the question", producer=PRODUCER)
        outranked.append((item[0], Decision.REJECTED, (*_kept_notes(item[2]), note)))
    return kept, outranked


def _kept_notes(diagnostics: tuple[Diagnostic, ...]) -> tuple[Diagnostic, ...]:
    """An outranked candidate's diagnostics, less the note that says why it was accepted."""
    return tuple(d for d in diagnostics if d.code != "accepted_by_consensus")
