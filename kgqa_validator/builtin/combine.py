"""The built-in rule that joins several scorers' scores (the ``kgqa_combine_scores`` of
both the ``scoring`` and the ``consensus`` plugin call :func:`combine`, so the rule holds with
either of them blocked).

Without a consensus score (fewer than three valid candidates, ``settings.consensus`` off, or
the ``consensus`` plugin blocked): one scorer's score is taken as it is, several scorers'
scores are averaged (and so are their thresholds).

With a consensus score ``c`` (in [0, 1], no threshold) next to the encoder's cosine ``e``
and its rejection threshold ``t``, and ``w = settings.consensus_weight``::

    e <  t:   score = e                                   (rejected, as before)
    e >= t:   score = (1 - w) * e + w * (t + (1 - t) * c)  (>= t: still accepted)

The consensus is mapped onto the accepted range [t, 1] and blended with the cosine, so it
reorders the candidates the encoder accepts but never rejects a candidate the encoder
accepts, nor accepts one it rejects: a candidate unlike the others may still be the only
right one, and agreement among wrong candidates is no evidence that they answer the
question.  The threshold, ``--threshold`` included, keeps meaning what it meant.  Without a
threshold the score is the plain blend ``(1 - w) * e + w * c``; with the consensus alone
(encoder blocked) the score is ``c`` and nothing is rejected for its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from kgqa_validator.config import Settings
from kgqa_validator.types import Score

CONSENSUS = "consensus"


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


def combine(scores: Sequence[Sequence[Score]], settings: Settings) -> list[Score] | None:
    """One score per candidate from every scorer's scores (the rule in the module docstring)."""
    if not scores:
        return None
    combined = []
    for per_candidate in zip(*scores, strict=True):
        consensus = [s for s in per_candidate if s.producer == CONSENSUS]
        others = [s for s in per_candidate if s.producer != CONSENSUS]
        if not consensus:
            combined.append(_mean(others))
        elif not others:
            combined.append(consensus[0])
        else:
            combined.append(blend(_mean(others), consensus[0], settings.consensus_weight))
    return combined
