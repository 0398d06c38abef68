"""Rejection thresholds calibrated on held-out pairs, for each precision the encoder runs at.

The pairs hold realistic negatives (the wrong variants a generator writes, from
:mod:`kgqa_validator.model.perturb`) as well as random other queries, so the threshold
separates a right query from a plausible wrong one, not only from an unrelated one.  The
threshold maximises accuracy subject to keeping at least ``min_recall`` of the gold queries:
rejecting the right query costs a user more than letting a wrong one through to the ranking.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kgqa_validator.model.metrics import accuracy_at, best_accuracy_threshold

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MIN_RECALL = 0.93


def recall_bounded_threshold(scores: Sequence[float], labels: Sequence[int],
                             min_recall: float) -> tuple[float, float]:
    """``(threshold, accuracy)``: the most accurate threshold that keeps ``min_recall`` of the
    positives (the accuracy-optimal one when that already does)."""
    threshold, accuracy = best_accuracy_threshold(scores, labels)
    positives = sorted(s for s, y in zip(scores, labels, strict=True) if y)
    if not positives:
        return threshold, accuracy
    cap = positives[int((1.0 - min_recall) * len(positives))]
    if threshold > cap:
        threshold = cap - 1e-6
        accuracy = accuracy_at(scores, labels, threshold)
    return float(threshold), float(accuracy)


def calibrate(model: SentenceTransformer, pairs: Sequence[tuple[str, str, int]],
              negatives: str = "random", min_recall: float | None = None) -> dict[str, Any]:
    """Thresholds on held-out ``(question, text, label)`` pairs for fp32 and int8 scoring.

    int8 moves cosines by hundredths, so it gets its own threshold.  bf16 shares the fp32 one
    (:func:`~kgqa_validator.model.precision.threshold_key`); what is recorded for it is the
    accuracy at that threshold and the largest cosine shift from fp32.
    """
    import torch

    from kgqa_validator.model.precision import computing, prepare, threshold_key

    labels = [p[2] for p in pairs]
    result: dict[str, Any] = {}
    cpu_copy = copy.deepcopy(model).cpu()
    cosines: dict[str, list[float]] = {}
    for precision, variant in (("fp32", model), ("int8", prepare(cpu_copy, "int8")),
                               ("bf16", cpu_copy)):
        with torch.no_grad(), computing(precision):
            q = variant.encode([p[0] for p in pairs], convert_to_numpy=True, normalize_embeddings=True,
                               show_progress_bar=False)
            d = variant.encode([p[1] for p in pairs], convert_to_numpy=True, normalize_embeddings=True,
                               show_progress_bar=False)
        cosines[precision] = (q * d).sum(-1).tolist()
        calibration: dict[str, Any] = {"pairs": len(pairs), "negatives": negatives}
        if min_recall is not None:
            calibration["min_recall"] = min_recall
        suffix = "" if precision == "fp32" else f"_{precision}"
        if threshold_key(precision) == "threshold" and precision != "fp32":
            calibration["accuracy"] = accuracy_at(cosines[precision], labels, result["threshold"])
            calibration["threshold"] = "fp32"
            calibration["max_cosine_shift"] = max(
                abs(a - b) for a, b in zip(cosines[precision], cosines["fp32"], strict=True))
        else:
            if min_recall is None:
                threshold, calibration["accuracy"] = best_accuracy_threshold(cosines[precision], labels)
            else:
                threshold, calibration["accuracy"] = recall_bounded_threshold(
                    cosines[precision], labels, min_recall)
            result[threshold_key(precision)] = threshold
        result[f"calibration{suffix}"] = calibration
    return result
