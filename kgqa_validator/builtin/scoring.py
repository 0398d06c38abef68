"""Built-in scorer (the shipped encoder) and score combination."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from kgqa_validator.builtin.combine import combine
from kgqa_validator.config import Settings
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.model.encoder import Encoder
from kgqa_validator.model.precision import resolve
from kgqa_validator.types import Candidate, Question, Score

PRODUCER = "encoder"
_ENCODERS: dict[tuple[Path | None, str], Encoder] = {}
_LOCK = threading.Lock()


def encoder_for(settings: Settings) -> Encoder:
    """One encoder per model folder for the whole process (the model loads once)."""
    with _LOCK:
        key = (settings.model_path, resolve(settings.precision))
        encoder = _ENCODERS.get(key)
        if encoder is None:
            encoder = Encoder(settings.model_path, precision=settings.precision)
            _ENCODERS[key] = encoder
        return encoder


def scorer_available() -> bool:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


@hookimpl(trylast=True)
def kgqa_score(
    question: Question, candidates: Sequence[Candidate], texts: Sequence[str], settings: Settings
) -> Sequence[Score] | None:
    if not question.text.strip() or not candidates or not scorer_available():
        return None
    encoder = encoder_for(settings)
    values = encoder.similarity(question.text, texts)
    threshold = settings.threshold if settings.threshold is not None else encoder.threshold
    detail = f"{encoder.name} ({encoder.precision})"
    return [Score(v, PRODUCER, threshold, detail) for v in values]


@hookimpl(trylast=True)
def kgqa_combine_scores(scores: Sequence[Sequence[Score]], settings: Settings) -> Sequence[Score] | None:
    # One scorer as is, several averaged, the consensus blended in: see builtin/combine.py.
    return combine(scores, settings)
