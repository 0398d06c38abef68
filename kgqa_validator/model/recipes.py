"""Training recipes (``kgqa-validator train --recipe NAME``).

``seed``
    The reference recipe, exactly: CosineSimilarityLoss on 12,000 pairs (half gold, half a
    random other query, label 1/0), batch 16, lr 5e-5, 1 epoch, seed 42, max length 256.
``default``
    Stage 1 of the shipped model: MultipleNegativesRankingLoss (in-batch negatives, scale 20)
    where every row also carries a *same-shaped* hard negative (another query of the same
    template with other ids, or the LC-QuAD-NoA twin), on the id form and the verbalised form.
``labelized-stage``
    Stage 2: a short pass (300 steps) that adds the labelized training file.
``generator-stage``
    Stage 3: triplets of question, gold and a wrong variant a generator would write
    (:mod:`kgqa_validator.model.perturb`), on the human-written questions (minus the fixed
    development slice), LC-QuAD, the LC-QuAD-NoA twins the right way round and the labelized
    file, every query read as the scorer reads it at run time (canonical text, property labels
    from the shipped table; entity labels from a labels file on a share of the rows).
``v2``
    The shipped model, in one command: stages 1, 2 and 3 chained (see :data:`V2_STAGES`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run (written into ``threshold.json``)."""

    name: str
    loss: str  # "cosine" | "mnrl"
    batch_size: int
    learning_rate: float
    epochs: float
    seed: int = 42
    max_seq_length: int = 256
    warmup_ratio: float = 0.0
    pairs: int | None = None  # cosine recipe: number of labelled pairs
    hard_negatives: bool = False
    verbalised: bool = False
    scale: float = 20.0
    twins: str = "own"  # LC-QuAD-NoA pairing, see kgqa_validator.model.data.TWINS
    generator_negatives: bool = False
    max_steps: int | None = None
    warmup_steps: int | None = None  # set: constant rate after that many warm-up steps


RECIPES: dict[str, Recipe] = {
    "seed": Recipe("seed", "cosine", 16, 5e-5, 1, pairs=12_000),
    "default": Recipe(
        "default", "mnrl", 32, 5e-5, 3, max_seq_length=128, warmup_ratio=0.05,
        hard_negatives=True, verbalised=True, twins="legacy",
    ),
    "labelized-stage": Recipe(
        "labelized-stage", "mnrl", 32, 2e-5, 1, max_seq_length=128, warmup_ratio=0.05,
        hard_negatives=True, verbalised=True, twins="legacy", max_steps=300,
    ),
    "generator-stage": Recipe(
        "generator-stage", "mnrl", 16, 2e-5, 1, max_seq_length=128, warmup_steps=20,
        hard_negatives=True, verbalised=True, generator_negatives=True, max_steps=50,
    ),
}


@dataclass(frozen=True)
class Stage:
    """One stage of a chained recipe: data files relative to ``--data-dir``."""

    folder: str
    recipe: str
    data: tuple[str, ...]
    exclude: tuple[str, ...]
    labels: tuple[str, ...] = ("lcquad2/id_labels.json",)


_TESTS = ("lcquad2/test.json", "lcquad2-labelized/test.jsonl")
V2_STAGES: tuple[Stage, ...] = (
    Stage("stage1", "default", ("lcquad2/train.json", "lc-quad-noa/train_balanced.json"), _TESTS[:1]),
    Stage("stage2", "labelized-stage", ("lcquad2-labelized/train.jsonl", "lcquad2/train.json"), _TESTS),
    Stage("stage3", "generator-stage",
          ("wikidata-human/train.jsonl", "lcquad2/train.json", "lc-quad-noa/train_balanced.json",
           "lcquad2-labelized/train.jsonl"), _TESTS),
)
"""``train --recipe v2 --data-dir DATA``: stage 1 and 2 are recipe 0.1.0 (including its NoA
pairing) and reproduce the 0.1.0 weights; stage 3 fixes the pairing and adds the human-written
questions and generator-like negatives.  ``--base FOLDER`` takes FOLDER as stage 2's output."""
CHAINED = {"v2": V2_STAGES}
