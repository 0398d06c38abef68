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
from kgqa_validator.model.precision import computing, prepare, resolve, threshold_key

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SHIPPED_MODEL = Path(__file__).resolve().parent / "shipped"


def read_threshold(model_dir: Path, precision: str = "fp32") -> float:
    """The calibrated rejection threshold stored beside the weights for ``precision`` (a model
    calibrated before that precision existed falls back to the fp32 threshold)."""
    meta = model_dir / "threshold.json"
    try:
        data = json.loads(meta.read_text())
        return float(data.get(threshold_key(precision), data["threshold"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta}: no calibrated threshold ({exc})") from exc


class _Ticket:
    """One caller's texts waiting for a shared model pass (:meth:`Encoder._encode_shared`)."""

    __slots__ = ("done", "error", "texts", "vectors")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.done = False


class Encoder:
    """Embeds texts with a sentence-transformers model; embeddings are cached by text.

    ``precision`` is one of :data:`~kgqa_validator.model.precision.PRECISIONS`; ``auto`` is
    resolved once, here, and the threshold calibrated for the resolved precision is used.
    """

    def __init__(self, model_dir: str | Path | None = None, cache_size: int = 4096,
                 precision: str = "auto") -> None:
        self.model_dir = Path(model_dir) if model_dir else SHIPPED_MODEL
        if not (self.model_dir / "modules.json").is_file():
            raise ModelError(
                f"no model in {self.model_dir}: train one with 'kgqa-validator train' "
                "or pass --model"
            )
        self.precision = resolve(precision)
        self.threshold = read_threshold(self.model_dir, self.precision)
        self._model: Any = None
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one model pass at a time (torch uses every core)
        self._pending_lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self.passes = 0  # model passes so far (how much batching across callers happened)
        self._executor: Any = None  # created under the model lock, on the first pass

    @property
    def name(self) -> str:
        return self.model_dir.name

    def _load(self) -> Any:
        if self._model is None:
            from kgqa_validator.model.loading import load_sentence_model

            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            model = load_sentence_model(self.model_dir, device="cpu")
            model.eval()
            self._model = prepare(model, self.precision)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text (cached texts are not re-encoded).

        The request's own vectors are held in a local table until the answer is built, so the
        cache size bounds only what is kept *between* requests: a request larger than the
        cache (or one whose new texts evict its cached ones) still gets every row.

        Threads that call this at the same time share model passes (see :class:`_Ticket`).
        """
        import numpy as np

        wanted = dict.fromkeys(texts)
        held: dict[str, Any] = {}
        with self._cache_lock:
            for text in wanted:
                vector = self._cache.get(text)
                if vector is not None:
                    held[text] = vector
                    self._cache.move_to_end(text)
        missing = [t for t in wanted if t not in held]
        if missing:
            held.update(self._encode_shared(missing))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([held[t] for t in texts])

    def _encode_shared(self, texts: list[str]) -> dict[str, Any]:
        """Vectors of ``texts``, encoded in one model pass with whatever other threads are
        waiting for at that moment.

        A forward pass over a batch of 50 texts costs much less than five passes over 10 (the
        per-pass overhead and the thread pool's start-up are paid once), so concurrent callers
        (the service's request threads) queue tickets and whichever thread gets the model next
        encodes every queued ticket at once; the others find theirs done.  No thread waits for
        company: a lone caller encodes at once, batching happens only when callers overlap.
        """
        ticket = _Ticket(texts)
        with self._pending_lock:
            self._pending.append(ticket)
        with self._model_lock:
            if not ticket.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    # Every pass runs on the encoder's own thread: torch's OpenMP keeps one
                    # thread team per calling thread, so passes from alternating request
                    # threads would oversubscribe the cores.
                    self._model_thread().submit(self._run, batch).result()
                finally:
                    for other in batch:  # whatever went wrong, no caller waits for nothing
                        if not other.done:
                            other.error = ModelError("the shared encoding pass was interrupted")
                            other.done = True
        if ticket.error is not None:
            # Another thread's pass failed (the leading thread raised its own exception):
            # a fresh exception per waiter, so tracebacks do not pile up across threads and
            # a KeyboardInterrupt stays in the thread it was meant for.
            raise ModelError(f"encoding failed: {type(ticket.error).__name__}: "
                             f"{ticket.error}") from ticket.error
        if not ticket.done:
            raise ModelError("the encoding pass ended without this request's vectors")
        return ticket.vectors

    def _model_thread(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgqa-encoder")
        return self._executor

    def _run(self, batch: list[_Ticket]) -> None:
        """Encode every ticket of ``batch`` in one pass (called holding the model lock)."""
        distinct = list(dict.fromkeys(t for ticket in batch for t in ticket.texts))
        try:
            model = self._load()
            with computing(self.precision):
                vectors = model.encode(distinct, batch_size=32, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
        except BaseException as exc:
            for ticket in batch:  # every waiting caller gets the failure, none hangs
                ticket.error = exc
                ticket.done = True
            raise
        found = dict(zip(distinct, vectors, strict=True))
        with self._cache_lock:
            for text, vector in found.items():
                self._remember(text, vector)
        for ticket in batch:
            ticket.vectors = {t: found[t] for t in ticket.texts}
            ticket.done = True
        self.passes += 1

    def _remember(self, text: str, vector: Any) -> None:
        if self._cache_size <= 0:
            return
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def similarity(self, question: str, texts: Sequence[str]) -> list[float]:
        """Cosine of the question with each text; the question is embedded once."""
        vectors = self.encode([question, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]
