"""Built-in scorer: agreement among the candidates (minimum Bayes risk / medoid selection).

Candidates for one question usually come from a beam, several samples or several systems,
and the one that agrees most with the others is more often right.  Each candidate's score is
its mean similarity to the other candidates of the request:

- candidates are compared by their structure (:mod:`kgqa_validator.structure_key`): PREFIX
  lines resolved, IRIs compacted, variables renamed, keywords upper-cased;
- similarity is the weighted Jaccard index of the two queries' multisets of normalised
  tokens and adjacent token pairs (pairs keep which entity goes with which property);
  tokens of the English-label boilerplate weigh ``DECORATION_WEIGHT`` instead of 1;
- structurally identical candidates are one group, and each copy is a vote: a copy is
  similar to its twins with similarity 1.

The score is in [0, 1] and carries no threshold: it ranks, it never rejects (see
:mod:`kgqa_validator.builtin.combine` for how it joins the encoder's score).  A candidate
that another one repeats (the same :attr:`Structure.core_key`: the same rows, spelling and
answer-neutral label columns aside) is a vote, and its score asks for the blend weight
``settings.consensus_weight_voted`` (1 by default); the combination applies it to the whole
request when the encoder accepts such a candidate, and ``settings.consensus_weight`` (0.5)
otherwise.  Copies mean the candidates are samples (n runs, several systems) and the
structure most of them converge on is evidence of its own (self-consistency); a set of
distinct variants (hand-made perturbations of one query, most beams) has no votes, and how
typical a variant's shape is says little about whether it is right, so there the encoder
keeps half the say.  Copies of a candidate the encoder rejects change nothing.  It abstains
(returns ``None``) when ``settings.consensus`` is off or fewer than ``MIN_CANDIDATES`` valid
candidates are scored: with two candidates there is no majority to find.

Work is bounded on hostile input: at most ``MAX_TOKENS`` tokens per candidate, and when a
request has many distinct candidates each is compared with the ``MAX_PAIRS // groups`` most
voted ones only (at least ``MIN_REFERENCES``), so the cost grows linearly with the number of
candidates beyond ``sqrt(MAX_PAIRS)`` distinct ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kgqa_validator.builtin.combine import combine
from kgqa_validator.config import Settings
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.structure_key import Structure, structure
from kgqa_validator.types import Candidate, Question, Score

PRODUCER = "consensus"
MIN_CANDIDATES = 3
DECORATION_WEIGHT = 0.25
MAX_TOKENS = 400
MAX_PAIRS = 20_000
MIN_REFERENCES = 16

Features = dict[tuple[str, ...], float]


@dataclass(frozen=True)
class Agreement:
    """One candidate's consensus: its score, the size of its group and the request's size."""

    value: float
    copies: int
    total: int


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


def agreements(forms: Sequence[Structure]) -> list[Agreement]:
    """Each candidate's mean similarity to the other candidates (copies count as votes)."""
    groups: dict[str, list[int]] = {}
    for i, form in enumerate(forms):
        groups.setdefault(form.key, []).append(i)
    members = list(groups.values())
    bags = [features(forms[m[0]]) for m in members]
    totals = [sum(bag.values()) for bag in bags]
    counts = [len(m) for m in members]
    # The most voted groups (first seen first among equals) are the references.
    order = sorted(range(len(members)), key=lambda g: (-counts[g], members[g][0]))
    limit = max(MIN_REFERENCES, MAX_PAIRS // max(1, len(members)))
    references = order[:limit]
    n = len(forms)
    result: list[Agreement | None] = [None] * n
    for g, indices in enumerate(members):
        weight = counts[g] - 1.0  # the group's own copies agree with it completely
        agreement = weight
        for h in references:
            if h != g:
                weight += counts[h]
                agreement += counts[h] * similarity(bags[g], bags[h], totals[g], totals[h])
        value = agreement / weight if weight > 0 else 0.0
        for i in indices:
            result[i] = Agreement(value, counts[g], n)
    return [a for a in result if a is not None]


def active(settings: Settings, valid_candidates: int) -> bool:
    """Whether the consensus scorer takes part for a request with this many valid candidates."""
    return settings.consensus and valid_candidates >= MIN_CANDIDATES


@hookimpl(trylast=True)
def kgqa_score(
    question: Question, candidates: Sequence[Candidate], texts: Sequence[str], settings: Settings
) -> Sequence[Score] | None:
    if not active(settings, len(candidates)):
        return None
    forms = [structure(c.sparql, settings.prefixes, max_tokens=MAX_TOKENS) for c in candidates]
    found = agreements(forms)
    # Copies that differ only in label columns that change no rows are the same query written
    # twice: votes as well as exact copies are.
    cores = [form.core_key for form in forms]
    copies = Counter(cores)
    scores = []
    for core, a in zip(cores, found, strict=True):
        detail = (f"mean structural similarity to the {a.total - 1} other candidates; "
                  f"{a.copies} of {a.total} candidates have this structure")
        voted = copies[core] > 1
        if voted:
            detail += (f"; {copies[core]} return the same rows: votes (blend weight "
                       f"{settings.consensus_weight_voted:g} where the encoder accepts one)")
        scores.append(Score(a.value, PRODUCER, None, detail,
                            settings.consensus_weight_voted if voted else None))
    return scores


@hookimpl(trylast=True)
def kgqa_combine_scores(scores: Sequence[Sequence[Score]], settings: Settings) -> Sequence[Score] | None:
    # The same rule as the scoring plugin's, so that the consensus still ranks on its own
    # when the encoder plugin is blocked (whichever of the two pluggy calls first answers).
    return combine(scores, settings)
