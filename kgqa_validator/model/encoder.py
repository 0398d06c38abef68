"""The question/query encoder at run time: the shipped model, loaded lazily, with a cache.

The package ships its fine-tuned model in ``kgqa_validator/model/shipped`` (safetensors,
fp16) with ``threshold.json`` beside it: the rejection threshold calibrated when it was
trained.  Loading never touches the network.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgqa_validator.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SHIPPED_MODEL = Path(__file__).resolve().parent / "shipped"


def read_threshold(model_dir: Path, int8: bool = False) -> float:
    """The calibrated rejection threshold stored beside the weights (int8 scoring has its own;
    a model calibrated before int8 existed falls back to the fp32 one)."""
    meta = model_dir / "threshold.json"
    try:
        data = json.loads(meta.read_text())
        return float(data.get("threshold_int8", data["threshold"]) if int8 else data["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta}: no calibrated threshold ({exc})") from exc


def quantize(model: Any) -> Any:
    """Dynamic int8 quantization of the Linear layers: about twice as fast on a CPU.

    Cosines move by a few thousandths (see the README's benchmark figures); on a torch build
    without quantized kernels the fp32 model is kept.
    """
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            # torch announces the move of these kernels to torchao; they work in this range.
            warnings.simplefilter("ignore", UserWarning)
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    except (RuntimeError, AttributeError, NotImplementedError) as exc:
        log.warning("int8 quantization unavailable (%s); using fp32", exc)
        return model


class Encoder:
    """Embeds texts with a sentence-transformers model; embeddings are cached by text."""

    def __init__(self, model_dir: str | Path | None = None, cache_size: int = 4096,
                 int8: bool = False) -> None:
        self.model_dir = Path(model_dir) if model_dir else SHIPPED_MODEL
        if not (self.model_dir / "modules.json").is_file():
            raise ModelError(
                f"no model in {self.model_dir}: train one with 'kgqa-validator train' "
                "or pass --model"
            )
        self.threshold = read_threshold(self.model_dir, int8)
        self.int8 = int8
        self._model: Any = None
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model_dir.name

    def _load(self) -> Any:
        if self._model is None:
            from kgqa_validator.model.train import load_sentence_model

            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            model = load_sentence_model(self.model_dir, device="cpu")
            model.eval()
            self._model = quantize(model) if self.int8 else model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text (cached texts are not re-encoded)."""
        import numpy as np

        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                model = self._load()
                vectors = model.encode(missing, batch_size=32, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            for text in texts:
                self._cache.move_to_end(text)
            return np.stack([self._cache[t] for t in texts])

    def similarity(self, question: str, texts: Sequence[str]) -> list[float]:
        """Cosine of the question with each text; the question is embedded once."""
        vectors = self.encode([question, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]
