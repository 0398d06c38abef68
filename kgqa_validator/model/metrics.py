"""Binary-classification and ranking metrics, as the reference model card reports them.

The threshold search follows sentence-transformers' ``BinaryClassificationEvaluator``: the
accuracy threshold is the midpoint between the two scores where accuracy peaks, and the F1
threshold likewise for F1.  Pure Python: evaluation must not need scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence


def average_precision(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Average precision of ranking by score (higher = more likely positive)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    positives = sum(1 for y in labels if y)
    if not positives:
        return 0.0
    hits = 0
    total = 0.0
    for rank, i in enumerate(order, 1):
        if labels[i]:
            hits += 1
            total += hits / rank
    return total / positives


def best_accuracy_threshold(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """``(threshold, accuracy)`` maximising accuracy of ``score >= threshold``."""
    rows = sorted(zip(scores, labels, strict=True), key=lambda r: -r[0])
    if not rows:
        return 0.0, 0.0
    positives_left = sum(1 for _, y in rows if y)
    negatives = len(rows) - positives_left
    best_acc, best_threshold = -1.0, rows[0][0]
    correct_pos = 0
    for i in range(len(rows) - 1):
        _score, label = rows[i]
        correct_pos += 1 if label else 0
        false_pos = (i + 1) - correct_pos
        acc = (correct_pos + negatives - false_pos) / len(rows)
        if acc > best_acc:
            best_acc = acc
            best_threshold = (rows[i][0] + rows[i + 1][0]) / 2
    return float(best_threshold), float(best_acc)


def best_f1_threshold(
    scores: Sequence[float], labels: Sequence[int]
) -> tuple[float, float, float, float]:
    """``(threshold, f1, precision, recall)`` at the F1-maximising threshold."""
    rows = sorted(zip(scores, labels, strict=True), key=lambda r: -r[0])
    total_pos = sum(1 for _, y in rows if y)
    best = (rows[0][0] if rows else 0.0, 0.0, 0.0, 0.0)
    tp = 0
    for i in range(len(rows) - 1):
        tp += 1 if rows[i][1] else 0
        precision = tp / (i + 1)
        recall = tp / total_pos if total_pos else 0.0
        if precision + recall == 0:
            continue
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best[1]:
            best = ((rows[i][0] + rows[i + 1][0]) / 2, f1, precision, recall)
    return float(best[0]), float(best[1]), float(best[2]), float(best[3])


def accuracy_at(scores: Sequence[float], labels: Sequence[int], threshold: float) -> float:
    """Accuracy of the rule ``score >= threshold`` means positive."""
    if not scores:
        return 0.0
    right = sum(1 for s, y in zip(scores, labels, strict=True) if (s >= threshold) == bool(y))
    return right / len(scores)


def reciprocal_rank(scores: Sequence[float], gold_index: int = 0) -> float:
    """1/rank of the gold item; ties count against it (a tie is not a win)."""
    gold = scores[gold_index]
    better_or_equal = sum(1 for i, s in enumerate(scores) if i != gold_index and s >= gold)
    return 1.0 / (1 + better_or_equal)
