"""Moved: the scoring text lives in :mod:`kgqa_validator.scoring_text` (the validator and
scorers use it; it is not a model concern).  Re-exported here for existing imports."""

from kgqa_validator.scoring_text import ids_in, label_token, scoring_text, verbalise

__all__ = ["ids_in", "label_token", "scoring_text", "verbalise"]
