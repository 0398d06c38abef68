"""Fine-tune the question/query encoder (``kgqa-validator train``).

Recipes are in :mod:`kgqa_validator.model.recipes`, rows in :mod:`kgqa_validator.model.trainset`,
thresholds in :mod:`kgqa_validator.model.calibrate`.  A plain torch loop (no ``datasets``
dependency), deterministic for a seed, with a progress bar and checkpoints that ``--resume``
continues from.  The rejection threshold is calibrated on a held-out slice of the training
examples (never on a test file) and saved beside the weights in ``threshold.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgqa_validator.errors import ModelError
from kgqa_validator.model.calibrate import MIN_RECALL, calibrate
from kgqa_validator.model.data import Example, load_examples
from kgqa_validator.model.loading import base_model_path, load_sentence_model, save_model
from kgqa_validator.model.recipes import CHAINED, RECIPES, Recipe
from kgqa_validator.model.trainset import (
    TrainingData,
    build_generator_data,
    build_training_data,
    clustered_batches,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


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


def _embed(model: SentenceTransformer, texts: Sequence[str]) -> Any:
    prepare = getattr(model, "preprocess", None) or model.tokenize
    features = prepare(list(texts))
    features = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in features.items()}
    return model(features)["sentence_embedding"]


@dataclass(frozen=True)
class TrainResult:
    output: Path
    steps: int
    seconds: float
    threshold: float


def _load_data(data_paths: Sequence[str | Path], exclude: Sequence[str | Path], recipe: Recipe,
               labels: Mapping[str, str]) -> TrainingData:
    examples: list[Example] = []
    for path in data_paths:
        examples.extend(load_examples(path, twins=recipe.twins))
    banned: set[str] = set()
    for path in exclude:
        for e in load_examples(path):
            banned.add(e.sparql)
            banned.update(e.questions)
    examples = [e for e in examples if e.sparql not in banned and not banned.intersection(e.questions)]
    if not examples:
        raise ModelError("no training examples left in the given data")
    if recipe.generator_negatives:
        from kgqa_validator.properties import shipped_properties

        return build_generator_data(examples, recipe, labels, shipped_properties())
    return build_training_data(examples, recipe, labels)


def _batches(data: TrainingData, recipe: Recipe) -> list[Any]:
    rng = random.Random(recipe.seed)
    if recipe.loss == "cosine":
        pairs = _cosine_pairs(data, recipe)
        return [pairs[i:i + recipe.batch_size] for i in range(0, len(pairs), recipe.batch_size)]
    batches: list[Any] = []
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
    return [[(rng.choice(r.questions), r.positive, r.negative) for r in b] for b in batches]


def _mnrl_loss(model: SentenceTransformer, batch: Sequence[tuple[str, str, str | None]],
               scale: float) -> Any:
    import torch

    questions = [b[0] for b in batch]
    docs = [b[1] for b in batch] + [b[2] for b in batch if b[2]]
    q = _embed(model, questions)
    d = _embed(model, docs)
    scores = scale * q @ d.T
    # The same gold text twice in a batch is not a negative of itself.
    mask = torch.zeros_like(scores, dtype=torch.bool)
    for i, (_, positive, _) in enumerate(batch):
        for j, text in enumerate(docs):
            if j != i and text == positive:
                mask[i, j] = True
    scores = scores.masked_fill(mask, float("-inf"))
    target = torch.arange(len(batch), device=q.device)
    return torch.nn.functional.cross_entropy(scores, target)


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
    """Fine-tune from ``base`` (default: the base model) and write a model folder with
    ``threshold.json``.  ``exclude`` names dataset files whose questions and queries must not
    be trained on (a test split), so that evaluation stays held out."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    labels = dict(labels or {})
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = _load_data(data_paths, exclude, recipe, labels)
    min_recall = MIN_RECALL if recipe.generator_negatives else None

    output = Path(output)
    if calibrate_only:
        # Same data, recipe and seed give the same held-out calibration slice as training had.
        trained = load_sentence_model(output, device=device)
        trained.eval()
        meta_file = output / "threshold.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        meta.update(calibrate(trained, data.calibration, data.negatives, min_recall))
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

    batches = _batches(data, recipe)
    limit = max_steps if max_steps is not None else recipe.max_steps
    total = len(batches) if limit is None else min(len(batches), limit)

    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    warmup = recipe.warmup_steps if recipe.warmup_steps is not None else int(total * recipe.warmup_ratio)

    def lr_lambda(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if recipe.warmup_steps is not None:
            # Constant after warm-up: a run stopped at step N is the run with max_steps=N.
            return 1.0
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
            loss = _mnrl_loss(model, batch, recipe.scale)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running = 0.98 * running + 0.02 * loss.item() if step > start_step else loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if on_log and step % 50 == 0:
            on_log(f"step {step}/{total} loss {running:.4f} {time.monotonic() - started:.0f}s")
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < total:
            save_model(model, checkpoint, fp16=False)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                       checkpoint / "optimizer.pt")
            (checkpoint / "state.json").write_text(json.dumps({"step": step + 1}))
    bar.close()
    seconds = time.monotonic() - started

    model.eval()
    thresholds = calibrate(model, data.calibration, data.negatives, min_recall)
    save_model(model, output, fp16=fp16)
    meta = {
        **thresholds,
        "recipe": asdict(recipe),
        "steps": total,
        "resumed_from_step": start_step,
        "train_rows": len(data.rows) + len(data.verbalised),
        "data": [Path(p).name for p in data_paths],
        "base": str(base) if base else "all-MiniLM-L6-v2",
        "seconds": round(seconds, 1),
        "device": dev,
    }
    (output / "threshold.json").write_text(json.dumps(meta, indent=2) + "\n")
    return TrainResult(output, total, seconds, float(thresholds["threshold"]))


def train_chained(
    name: str, data_dir: str | Path, output: str | Path, *, base: str | Path | None = None,
    resume: bool = True, device: str | None = None, fp16: bool = True, progress: bool = True,
    checkpoint_every: int = 200, max_steps: int | None = None,
    on_log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run every stage of a chained recipe (``v2``); a finished stage is not run again.

    ``base`` is taken as the output of the stage before the last (for ``v2``: the 0.1.0
    weights that stages 1 and 2 produce).  The last stage's folder is copied to ``output``.
    """
    from kgqa_validator.builtin.labels import load_labels

    stages = CHAINED[name]
    data_dir, output = Path(data_dir), Path(output)
    previous: Path | None = None
    result: TrainResult | None = None
    todo = stages
    if base is not None:
        previous, todo = Path(base), stages[-1:]
    for stage in todo:
        folder = output / stage.folder
        recipe = RECIPES[stage.recipe]
        paths = [data_dir / p for p in stage.data]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ModelError(f"recipe {name}: missing data file(s) {', '.join(missing)}")
        labels: dict[str, str] = {}
        for path in stage.labels:
            labels.update(load_labels(data_dir / path))
        if (folder / "threshold.json").is_file() and (folder / "model.safetensors").is_file():
            if on_log:
                on_log(f"{stage.folder}: already trained, kept")
            previous = folder
            continue
        if on_log:
            on_log(f"{stage.folder}: recipe {stage.recipe} from {previous or 'the base model'}")
        last = stage is stages[-1]
        result = train(paths, folder, recipe, labels=labels,
                       exclude=[data_dir / p for p in stage.exclude], base=previous,
                       resume=resume, device=device, fp16=fp16 if last else False, progress=progress,
                       checkpoint_every=checkpoint_every, max_steps=max_steps if last else None,
                       on_log=on_log)
        previous = folder
    assert previous is not None
    for item in previous.iterdir():
        if item.name == "checkpoint":
            continue
        target = output / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    meta = json.loads((output / "threshold.json").read_text())
    return result or TrainResult(output, int(meta.get("steps", 0)), 0.0, float(meta["threshold"]))
