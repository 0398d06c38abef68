"""How alike two queries' structures are (:mod:`kgqa_validator.structure_key` forms).

Used by the consensus scorer (each candidate's mean similarity to the others) and by the
decision (a candidate one term away from a better-ranked one is ``outranked``).
"""

from __future__ import annotations

from kgqa_validator.structure_key import Structure

DECORATION_WEIGHT = 0.25
"""Weight of a token of the English-label boilerplate (the label service, ``rdfs:label``
filters): present in most generated queries, it says little about what a query asks."""

Features = dict[tuple[str, ...], float]


def features(form: Structure) -> Features:
    """Weighted multiset of a query's normalised tokens and adjacent token pairs."""
    bag: Features = {}
    tokens, decoration = form.tokens, form.decoration
    for i, token in enumerate(tokens):
        weight = DECORATION_WEIGHT if decoration[i] else 1.0
        bag[(token,)] = bag.get((token,), 0.0) + weight
        if i + 1 < len(tokens):
            pair = (token, tokens[i + 1])
            pair_weight = DECORATION_WEIGHT if decoration[i] or decoration[i + 1] else 1.0
            bag[pair] = bag.get(pair, 0.0) + pair_weight
    return bag


def similarity(a: Features, b: Features, total_a: float | None = None,
               total_b: float | None = None) -> float:
    """Weighted Jaccard index: sum of the smaller weights over sum of the larger ones."""
    if len(a) > len(b):
        a, b, total_a, total_b = b, a, total_b, total_a
    common = sum(min(weight, b[key]) for key, weight in a.items() if key in b)
    union = (sum(a.values()) if total_a is None else total_a) \
        + (sum(b.values()) if total_b is None else total_b) - common
    return common / union if union > 0 else 1.0
