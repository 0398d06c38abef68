"""Training rows for the MNRL recipes: question phrasings, the gold text and hard negatives.

``build_training_data`` is recipe 0.1.0's (stage 1 and 2): same-shaped clusters give the hard
negatives, the verbalised form is added where labels are known.  ``build_generator_data`` is
stage 3's: every row carries the wrong variants a generator writes (:mod:`.perturb`), every
text is the canonical scoring text with property labels, as the scorer reads it at run time.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kgqa_validator.model.data import Example, in_development_slice, query_shape
from kgqa_validator.model.perturb import Perturber
from kgqa_validator.model.recipes import Recipe
from kgqa_validator.properties import PropertyTable
from kgqa_validator.scoring_text import scoring_text


@dataclass
class TrainingRow:
    """One MNRL row: question phrasings, the gold text and its hard negatives."""

    questions: tuple[str, ...]
    positive: str
    negative: str | None
    negatives: tuple[str, ...] = ()


@dataclass
class TrainingData:
    rows: list[TrainingRow] = field(default_factory=list)
    verbalised: list[TrainingRow] = field(default_factory=list)
    calibration: list[tuple[str, str, int]] = field(default_factory=list)
    negatives: str = "random"


def _legacy_verbalise(sparql: str, labels: Mapping[str, str]) -> str:
    # Recipe 0.1.0's text: ids replaced, braces bracketed, SELECT/WHERE/ASK lower-cased.
    import re

    from kgqa_validator.scoring_text import label_token

    def replace(match: re.Match[str]) -> str:
        label = labels.get(match.group(2))
        return f"{match.group(1)}:{label_token(label)}" if label else match.group(0)

    text = re.sub(r"\b(wd|wdt|p|ps|pq|psv|pqv|pr|wdno|wdtn|psn|pqn):([QPL]\d+)\b", replace, sparql)
    text = text.replace("{", "[").replace("}", "]")
    return re.sub(r"\b(SELECT|WHERE|ASK)\b", lambda m: m.group(1).lower(), text, flags=re.IGNORECASE)


def build_training_data(
    examples: Sequence[Example], recipe: Recipe, labels: Mapping[str, str],
    calibration_fraction: float = 0.05,
) -> TrainingData:
    """Recipe 0.1.0: split off a calibration slice and turn the rest into rows."""
    rng = random.Random(recipe.seed)
    positives = [e for e in examples if e.label == 1]
    order = list(range(len(positives)))
    rng.shuffle(order)
    # At least a couple of pairs so that even a tiny run stores a measured threshold.
    n_cal = min(500, max(2, int(len(positives) * calibration_fraction)))
    calib_examples = [positives[i] for i in order[:n_cal]]
    train_examples = [positives[i] for i in order[n_cal:]]

    data = TrainingData()
    all_queries = [e.sparql for e in train_examples]
    for example in calib_examples:
        data.calibration.append((example.questions[0], example.sparql, 1))
        data.calibration.append((example.questions[0], rng.choice(all_queries), 0))

    for example in train_examples:
        negative = example.negative if recipe.hard_negatives else None
        data.rows.append(TrainingRow(example.questions, example.sparql, negative))
        if recipe.verbalised and labels:
            spoken = _legacy_verbalise(example.sparql, labels)
            if spoken != _legacy_verbalise(example.sparql, {}):
                spoken_negative = _legacy_verbalise(negative, labels) if negative else None
                data.verbalised.append(TrainingRow(example.questions, spoken, spoken_negative))
    return data


# Stage 3's mix: how many rows of each source (a cap; each row one hard negative per use).
HUMAN_REPEATS = 3
LCQUAD_ROWS = 9000
LCQUAD_VERBALISED_ROWS = 3000
LABELIZED_ROWS = 3000
CALIBRATION_PER_SOURCE = 100


def build_generator_data(
    examples: Sequence[Example], recipe: Recipe, entity_labels: Mapping[str, str],
    properties: PropertyTable,
) -> TrainingData:
    """Stage 3: rows with generator-like negatives, texts as the scorer reads them.

    Human-written records and LC-QuAD-NoA twins of the development slice
    (:func:`in_development_slice`) are dropped here, whatever the caller passed: ``evaluate``
    measures on them.  A calibration slice of each source is held out: its gold
    pairs (1) and the wrong variants of the same query (0) calibrate the threshold.
    """
    rng = random.Random(recipe.seed)
    plabels = properties.labels()
    both = {**plabels, **entity_labels}
    sources: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        if e.label != 1:
            continue
        kind = _kind(e)
        if kind in ("human", "twin") and in_development_slice(e.key):
            continue
        sources[kind].append(e)
    for group in sources.values():
        rng.shuffle(group)
    perturber = Perturber(properties, [e.sparql for k in ("human", "lcquad") for e in sources[k]])

    data = TrainingData(negatives="generator variants + random")
    every_query = [e.sparql for group in sources.values() for e in group]
    for kind in sorted(sources):
        share = min(CALIBRATION_PER_SOURCE, max(1, len(sources[kind]) // 10))
        held = sources[kind][:share] if kind in ("human", "lcquad") else []
        sources[kind] = sources[kind][len(held):]
        for e in held:
            data.calibration.append((e.questions[0], scoring_text(e.sparql, plabels), 1))
            for variant in perturber.variants(e.sparql, rng):
                data.calibration.append((e.questions[0], scoring_text(variant.sparql, plabels), 0))
            data.calibration.append((e.questions[0], scoring_text(rng.choice(every_query), plabels), 0))

    def row(e: Example, labels: Mapping[str, str], repeats: int = 1) -> list[TrainingRow]:
        negatives = [scoring_text(v.sparql, labels) for v in perturber.variants(e.sparql, rng)]
        if e.negative:
            negatives.insert(0, scoring_text(e.negative, labels))
        positive = scoring_text(e.sparql, labels)
        out = []
        for _ in range(repeats):
            pick = negatives[0] if e.negative else (rng.choice(negatives) if negatives else None)
            out.append(TrainingRow(e.questions, positive, pick, tuple(negatives)))
        return out

    for e in sources["human"]:
        data.rows += row(e, plabels, HUMAN_REPEATS)
    for e in sources["twin"]:
        data.rows += row(e, plabels)
    for e in sources["lcquad"][:LCQUAD_ROWS]:
        data.rows += row(e, plabels)
    verbalisable = [e for e in sources["lcquad"] if any(q in entity_labels for q in _qids(e.sparql))]
    for e in verbalisable[:LCQUAD_VERBALISED_ROWS]:
        data.verbalised += row(e, both)
    for e in sources["labelized"][:LABELIZED_ROWS]:
        data.rows += row(e, plabels)
    return data


def _qids(sparql: str) -> list[str]:
    from kgqa_validator.scoring_text import ids_in

    return [i for i in ids_in(sparql) if i.startswith("Q")]


def _kind(e: Example) -> str:
    if e.negative:
        return "twin"
    if e.source.endswith(".jsonl") and "/" in e.key and not e.key.startswith(e.source):
        return "human"
    if e.source.endswith(".jsonl"):
        return "labelized"
    return "lcquad"


def clustered_batches(
    rows: Sequence[TrainingRow], batch_size: int, rng: random.Random
) -> list[list[TrainingRow]]:
    """Batches made of same-shaped clusters, so in-batch negatives are hard negatives.

    Rows of one shape are cut into chunks of at most half a batch; chunks are shuffled and
    packed into batches, so every batch mixes same-shaped rivals (other ids) with queries of
    other shapes.
    """
    groups: dict[str, list[TrainingRow]] = defaultdict(list)
    for row in rows:
        groups[query_shape(row.positive)].append(row)
    half = max(1, batch_size // 2)
    chunks: list[list[TrainingRow]] = []
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        chunks.extend(group[i:i + half] for i in range(0, len(group), half))
    rng.shuffle(chunks)
    batches: list[list[TrainingRow]] = []
    current: list[TrainingRow] = []
    for chunk in chunks:
        if current and len(current) + len(chunk) > batch_size:
            batches.append(current)
            current = []
        current.extend(chunk)
    if current:
        batches.append(current)
    return batches
