"""Question/query scores for a whole batch of pairs in one encoder call.

The model and threshold are the validator's built-in scorer's (the shipped encoder, or
``--model``, at ``--precision``; the calibrated threshold unless ``--threshold``).  Unlike the
interactive scorer there is no cache across batches: each batch's distinct texts are encoded
together in a fixed (sorted) order, so a batch gives bit-identical scores whichever batches
ran before it in this process (a resumed run, a Ray actor) and the output is reproducible.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kgqa_validator.model.encoder import SHIPPED_MODEL, read_threshold
from kgqa_validator.model.precision import computing, prepare, resolve

ENCODE_BATCH = 64
# Loaded models, shared by every scorer of the process (a test suite, a service): the model
# holds no state between calls, so sharing never changes a score.
_MODELS: dict[tuple[Path, str], Any] = {}
_LOCK = threading.Lock()


class BatchScorer:
    """Cosine similarities of many text pairs; the model loads on the first call."""

    def __init__(self, model_path: Path | None = None, precision: str = "auto",
                 threshold: float | None = None) -> None:
        self.model_dir = Path(model_path) if model_path else SHIPPED_MODEL
        self.precision = resolve(precision)
        self.threshold = threshold if threshold is not None \
            else read_threshold(self.model_dir, self.precision)
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"{self.model_dir.name} ({self.precision})"

    def _load(self) -> Any:
        if self._model is None:
            key = (self.model_dir.resolve(), self.precision)
            with _LOCK:
                if key not in _MODELS:
                    from kgqa_validator.model.train import load_sentence_model

                    model = load_sentence_model(self.model_dir, device="cpu")
                    model.eval()
                    _MODELS[key] = prepare(model, self.precision)
                self._model = _MODELS[key]
        return self._model

    def similarities(self, pairs: Iterable[tuple[str, str]]) -> list[float]:
        """Cosine of each ``(a, b)``; every distinct text is encoded once per call."""
        pairs = list(pairs)
        if not pairs:
            return []
        texts = sorted({t for pair in pairs for t in pair})
        model = self._load()
        with computing(self.precision):
            vectors = model.encode(texts, batch_size=ENCODE_BATCH, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)
        row = {text: i for i, text in enumerate(texts)}
        return [float(vectors[row[a]] @ vectors[row[b]]) for a, b in pairs]
