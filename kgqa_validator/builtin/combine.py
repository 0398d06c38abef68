"""The built-in rule that joins several scorers' scores (the ``kgqa_combine_scores`` of
both the ``scoring`` and the ``consensus`` plugin call :func:`combine`, so the rule holds with
either of them blocked).

Without a consensus score (fewer than three valid candidates, ``settings.consensus`` off, or
the ``consensus`` plugin blocked): one scorer's score is taken as it is, several scorers'
scores are averaged (and so are their thresholds).

With a consensus score ``c`` (in [0, 1], no threshold) next to the encoder's cosine ``e``
and its rejection threshold ``t``, and ``w`` the request's weight (:func:`request_weight`:
``settings.consensus_weight_voted`` where the encoder accepts a candidate that others repeat,
else ``settings.consensus_weight``; see :mod:`kgqa_validator.builtin.consensus`)::

    e <  t:   score = e                                   (rejected, as before)
    e >= t:   score = (1 - w) * e + w * (t + (1 - t) * c)  (>= t: still accepted)

The consensus is mapped onto the accepted range [t, 1] and blended with the cosine, so it
reorders the candidates the encoder accepts and never rejects one: a candidate unlike the
others may still be the only right one.

One exception (``settings.consensus_accepts``, on by default): when the encoder rejects
*every* candidate, the one the others agree with most (the highest ``c``, every copy of it)
is accepted all the same, its score lifted to ``max(t, blend)``.  The encoder's threshold is
calibrated on LC-QuAD-shaped and generator-like pairs; on queries written in other styles
it rejected every candidate of 8% of the questions of real LLM candidate sets, while the
candidate most generators converged on is right more often than any other.  So a request
with three or more valid candidates always keeps one answer; when the encoder accepts any
candidate, agreement among the others is no evidence and nothing else changes.  With an
explicit ``--threshold`` (``settings.threshold``) nothing is lifted: it is the user's hard cut.

Without a threshold the score is the plain blend ``(1 - w) * e + w * c``; with the consensus
alone (encoder blocked) the score is ``c`` and nothing is rejected for its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from kgqa_validator.config import Settings
from kgqa_validator.types import Score

CONSENSUS = "consensus"
ACCEPTED_BY_CONSENSUS = "every candidate is below the threshold; kept: the others agree with it most"
"""The ``detail`` of a score the consensus lifted (the decision notes it)."""


def _mean(per_candidate: Sequence[Score]) -> Score:
    if len(per_candidate) == 1:
        return per_candidate[0]
    thresholds = [s.threshold for s in per_candidate if s.threshold is not None]
    return Score(
        fmean(s.value for s in per_candidate),
        "+".join(s.producer for s in per_candidate),
        fmean(thresholds) if len(thresholds) == len(per_candidate) else None,
        "mean",
    )


def blend(base: Score, consensus: Score, weight: float) -> Score:
    """``base`` (the encoder's, or the mean of the gating scorers) joined with the consensus."""
    e, c, t = base.value, consensus.value, base.threshold
    producer = f"{base.producer}+{consensus.producer}"
    if t is None:
        return Score((1 - weight) * e + weight * c, producer, None, f"blend w={weight:g}")
    if e < t:
        return Score(e, producer, t, "below the threshold: the consensus is not added")
    return Score((1 - weight) * e + weight * (t + (1 - t) * c), producer, t,
                 f"blend w={weight:g} above the threshold")


def _passes(score: Score) -> bool:
    return score.threshold is None or score.value >= score.threshold


def accepted_by_consensus(base: Score, consensus: Score, weight: float) -> Score:
    """The consensus choice's score when the encoder put it below its threshold ``t``: the
    blend as if it were accepted, at least ``t``."""
    e, c, t = base.value, consensus.value, base.threshold
    assert t is not None  # only a score below its threshold is lifted
    blended = (1 - weight) * e + weight * (t + (1 - t) * c)
    return Score(max(t, blended), f"{base.producer}+{consensus.producer}", t,
                 ACCEPTED_BY_CONSENSUS)


def request_weight(rows: Sequence[tuple[Score | None, Score | None]], settings: Settings) -> float:
    """The consensus weight of a request, from its ``(consensus, gating)`` scores per
    candidate: the weight a consensus score asks for (a candidate with copies,
    :mod:`kgqa_validator.builtin.consensus`) on a candidate the gating scorers accept, else
    ``settings.consensus_weight``.  Copies of a rejected candidate are no votes for anything
    that can be picked."""
    for consensus, base in rows:
        if consensus is not None and base is not None and consensus.weight is not None \
                and _passes(base):
            return consensus.weight
    return settings.consensus_weight


def combine(scores: Sequence[Sequence[Score]], settings: Settings) -> list[Score] | None:
    """One score per candidate from every scorer's scores (the rule in the module docstring)."""
    if not scores:
        return None
    # Per candidate: its consensus score and the mean of the gating scorers' (the encoder's).
    rows: list[tuple[Score | None, Score | None]] = []
    for per_candidate in zip(*scores, strict=True):
        agreement = [s for s in per_candidate if s.producer == CONSENSUS]
        gating = [s for s in per_candidate if s.producer != CONSENSUS]
        rows.append((agreement[0] if agreement else None, _mean(gating) if gating else None))
    choice = None
    # An explicit threshold (--threshold) is the user's hard cut: nothing is lifted past it.
    encoder_accepts = any(_passes(base) for c, base in rows if c is not None and base is not None)
    if settings.consensus_accepts and settings.threshold is None and not encoder_accepts:
        choice = max((c.value for c, _ in rows if c is not None), default=None)
    weight = request_weight(rows, settings)
    combined = []
    for consensus, base in rows:
        if consensus is None:
            assert base is not None  # every candidate has at least one score
            combined.append(base)
        elif base is None:
            combined.append(consensus)
        elif not _passes(base) and consensus.value == choice:
            combined.append(accepted_by_consensus(base, consensus, weight))
        else:
            combined.append(blend(base, consensus, weight))
    return combined
