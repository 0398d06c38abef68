"""Generator-like evaluation sets: what a user's candidates look like.

``generator`` sets come from the fixed development slice of the human-written questions
(:func:`~kgqa_validator.model.data.in_development_slice`, never trained on): the gold query as
published (PREFIX lines and all) with the wrong variants a generator writes
(:mod:`kgqa_validator.model.perturb`), in a seeded random order.  ``noa_twins`` sets pair an
LC-QuAD-NoA twin's question with its own query (gold) and the original query (wrong), for the
twins of the same development slice; each twin is labelled ``entity`` (the two queries name
other entities) or ``property`` (the same entities, another property).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kgqa_validator.model.data import in_development_slice, load_examples
from kgqa_validator.model.perturb import Perturber
from kgqa_validator.properties import PropertyTable
from kgqa_validator.scoring_text import ids_in

SEED = 0


@dataclass(frozen=True)
class CandidateSet:
    question: str
    candidates: tuple[str, ...]
    gold: int  # index of the gold query in ``candidates``
    kinds: tuple[str, ...]  # per candidate: "gold" or the perturbation kind


def shuffled_set(question: str, gold: str, wrong: Sequence[tuple[str, str]],
                 rng: random.Random) -> CandidateSet:
    """The gold query among the ``(query, kind)`` wrong ones, in ``rng``'s order (input order
    breaks ties in a ranking, so the gold must not always come first)."""
    items = [(gold, "gold"), *wrong]
    rng.shuffle(items)
    index = next(i for i, (_, kind) in enumerate(items) if kind == "gold")
    return CandidateSet(question, tuple(q for q, _ in items), index, tuple(k for _, k in items))


def generator_sets(human: Path, properties: PropertyTable, limit: int) -> list[CandidateSet]:
    """Development-slice questions, each with its gold query and its wrong variants."""
    examples = [e for e in load_examples(human) if e.label == 1]
    perturber = Perturber(properties, [e.sparql for e in examples])
    rng = random.Random(SEED)
    sets = []
    for e in examples:
        if not in_development_slice(e.key):
            continue
        variants = perturber.variants(e.sparql, rng)
        if not variants:
            continue
        sets.append(shuffled_set(e.questions[0], e.sparql,
                                 [(v.sparql, v.kind) for v in variants], rng))
    return sets[:limit]


def noa_twin_sets(noa: Path, limit: int) -> list[CandidateSet]:
    """Development-slice LC-QuAD-NoA twins: the twin's question, its own query, the old one."""
    rng = random.Random(SEED)
    sets = []
    for e in load_examples(noa):
        if not e.negative or not in_development_slice(e.key):
            continue
        sets.append(shuffled_set(e.questions[0], e.sparql,
                                 [(e.negative, twin_kind(e.sparql, e.negative))], rng))
    return sets[:limit]


def twin_kind(query: str, twin: str) -> str:
    """``entity`` when the twins' entity ids differ, else ``property``.  An entity twin cannot
    be told from its question by an ids-only scorer: only a label source (``--labels``) says
    which of two Q-ids the question names."""
    def entities(sparql: str) -> list[str]:
        return [i for i in ids_in(sparql) if i.startswith("Q")]

    return "entity" if entities(query) != entities(twin) else "property"


def decision_metrics(sets: Sequence[CandidateSet], ranked: Sequence[Sequence[int]],
                     accepted: Sequence[Sequence[bool]]) -> dict[str, float]:
    """hits@1 of the decided ranking, gold-rejected and wrong-accepted rates (also by kind)."""
    hits = gold_rejected = wrong = wrong_accepted = 0
    by_kind: dict[str, list[int]] = {}
    for cset, order, verdicts in zip(sets, ranked, accepted, strict=True):
        hits += bool(order) and order[0] == cset.gold
        gold_rejected += not verdicts[cset.gold]
        for i, kind in enumerate(cset.kinds):
            if i == cset.gold:
                continue
            wrong += 1
            wrong_accepted += verdicts[i]
            by_kind.setdefault(kind, [0, 0])
            by_kind[kind][0] += verdicts[i]
            by_kind[kind][1] += 1
    n = len(sets) or 1
    metrics = {"hits@1": hits / n, "gold_rejected": gold_rejected / n,
               "wrong_accepted": wrong_accepted / (wrong or 1), "sets": float(len(sets)),
               "mean_candidates": sum(len(s.candidates) for s in sets) / n}
    for kind, (acc, total) in sorted(by_kind.items()):
        metrics[f"wrong_accepted_{kind}"] = acc / total
    return metrics
