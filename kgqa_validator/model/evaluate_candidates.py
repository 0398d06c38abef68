"""How well the validator picks among real generated candidates (``evaluate --llm-candidates``).

The input is JSON lines ``{"id", "question", "candidates": [{"sparql", "answer_f1", "votes"}]}``:
the distinct queries that text-to-SPARQL systems produced for a question, each with the
answer-set F1 of its answers against the gold answers and how many runs produced it.  For
each question the validator picks ``Report.best`` and the pick's ``answer_f1`` counts (0 when
no candidate is accepted).  Set-ups, all through :meth:`Validator.validate`:

``default``         the full default decision (validity, encoder threshold, consensus);
``encoder``         the same with ``consensus=False``;
``consensus``       the ``scoring`` plugin blocked: valid candidates ranked by agreement only;

and, for reference, ``random`` (the mean F1 of a question's candidates: a random pick),
``most_voted`` (the query most runs produced) and ``oracle`` (the best candidate).

Each question is measured twice: with each distinct query once (``distinct``), and with each
query repeated as often as it was generated (``as_generated``), as a validator receives the
outputs of n runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from statistics import fmean
from typing import Any

from kgqa_validator.config import Settings
from kgqa_validator.errors import DataFormatError
from kgqa_validator.validator import Validator

SETUPS = ("default", "encoder", "consensus")
SENSITIVITY = (0.25, 0.5, 0.75, 1.0)
"""Fixed consensus weights (voted requests or not) the CLI reports next to the default (a
check, not a tuning)."""


def read_candidate_sets(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The question records of ``path``; :class:`DataFormatError` on a malformed line."""
    try:
        stream = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from exc
    with stream:
        count = 0
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                candidates = record["candidates"]
                question = record["question"]
                ok = isinstance(question, str) and isinstance(candidates, list) and all(
                    isinstance(c["sparql"], str) and isinstance(c["answer_f1"], int | float)
                    for c in candidates)
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataFormatError(f"{path}:{number}: not a candidate set ({exc})") from exc
            if not ok:
                raise DataFormatError(f"{path}:{number}: expected question, candidates with "
                                      "sparql and answer_f1")
            if not candidates:
                continue
            yield record
            count += 1
            if limit is not None and count >= limit:
                return


def _validators(settings: Settings, weights: Sequence[float],
                only: Sequence[str] | None) -> dict[str, Validator]:
    if only is not None:
        return {name: v for name, v in _validators(settings, weights, None).items() if name in only}
    found = {
        "default": Validator(settings, autoload=False),
        "encoder": Validator(replace(settings, consensus=False), autoload=False),
        "consensus": Validator(settings, autoload=False, block=["scoring"]),
    }
    for weight in weights:
        found[f"default_w{weight:g}"] = Validator(
            settings.with_consensus_weight(weight), autoload=False)
    return found


class _Tally:
    """Picks and counts of one variant (distinct queries, or copies as generated)."""

    def __init__(self, setups: Sequence[str]) -> None:
        self.picked: dict[str, list[float]] = {name: [] for name in setups}
        self.none_accepted = dict.fromkeys(setups, 0)
        self.sizes: list[int] = []
        self.invalid = 0
        self.below_threshold = 0
        self.reference: dict[str, list[float]] = {"random": [], "most_voted": [], "oracle": []}

    def summary(self) -> dict[str, Any]:
        n, total = len(self.sizes), sum(self.sizes)
        return {
            "candidates_per_question": round(total / n, 2) if n else 0.0,
            "invalid_candidate_rate": round(self.invalid / total, 4) if total else 0.0,
            "below_threshold_rate": round(self.below_threshold / total, 4) if total else 0.0,
            "setups": {name: {"answer_f1": round(fmean(values), 4) if values else 0.0,
                              "none_accepted": self.none_accepted[name]}
                       for name, values in self.picked.items()},
            "reference": {name: round(fmean(values), 4) if values else 0.0
                          for name, values in self.reference.items()},
        }


def evaluate_llm_candidates(path: Path, settings: Settings | None = None, *,
                            limit: int | None = None, weights: Sequence[float] = (),
                            only: Sequence[str] | None = None,
                            progress: bool = False) -> dict[str, Any]:
    """Mean answer-F1 of each set-up's pick over the question records of ``path``.

    Two variants: ``distinct`` (each distinct query once, as the file lists them) and
    ``as_generated`` (each query repeated ``votes`` times, as a validator receives the
    outputs of n runs).  ``weights`` adds the default decision with other consensus weights
    (a sensitivity check, distinct variant only); ``only`` names the set-ups to run (default
    all).  Returns ``{"questions", "distinct":
    {...}, "as_generated": {...}, "seconds"}``; each variant has ``setups`` (``answer_f1``,
    ``none_accepted`` per set-up) and ``reference`` (random, most_voted, oracle).
    """
    settings = settings or Settings()
    validators = _validators(settings, weights, only)
    tallies = {"distinct": _Tally(list(validators)),
               "as_generated": _Tally([name for name in SETUPS if name in validators])}
    started = time.perf_counter()
    records = list(read_candidate_sets(path, limit))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(records), desc="llm candidates", unit="question")
    for record in records:
        votes = [max(1, int(c.get("votes", 1) or 1)) for c in record["candidates"]]
        most_voted = float(record["candidates"][votes.index(max(votes))]["answer_f1"])
        for variant, tally in tallies.items():
            copies = votes if variant == "as_generated" else [1] * len(votes)
            f1s = [float(c["answer_f1"]) for c, k in zip(record["candidates"], copies, strict=True)
                   for _ in range(k)]
            queries = [c["sparql"] for c, k in zip(record["candidates"], copies, strict=True)
                       for _ in range(k)]
            tally.sizes.append(len(queries))
            tally.reference["random"].append(fmean(f1s))
            tally.reference["oracle"].append(max(f1s))
            tally.reference["most_voted"].append(most_voted)
            # The encoder caches embeddings by text: every set-up after the first is cheap.
            for name in tally.picked:
                report = validators[name].validate(record["question"], queries)
                if name == "default":
                    tally.invalid += sum(not v.valid for v in report.verdicts)
                    tally.below_threshold += sum(
                        any(d.code == "below_threshold" for d in v.diagnostics)
                        for v in report.verdicts)
                best = report.best
                if best is None:
                    tally.none_accepted[name] += 1
                tally.picked[name].append(0.0 if best is None else f1s[best.candidate.index])
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return {
        "file": path.name,
        "questions": len(records),
        "consensus_weight": settings.consensus_weight,
        "consensus_weight_voted": settings.consensus_weight_voted,
        **{variant: tally.summary() for variant, tally in tallies.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def format_result(result: dict[str, Any]) -> list[str]:
    """Lines for the terminal."""
    lines = [f"{result['file']}: {result['questions']} questions "
             f"(consensus weight {result['consensus_weight']:g}, "
             f"{result['consensus_weight_voted']:g} where "
             f"candidates repeat; {result['seconds']:.0f}s)"]
    for variant in ("distinct", "as_generated"):
        part = result[variant]
        lines.append(f"  {variant}: {part['candidates_per_question']} candidates per question, "
                     f"invalid {part['invalid_candidate_rate']:.1%}, below the threshold "
                     f"{part['below_threshold_rate']:.1%}")
        for name, metrics in part["setups"].items():
            lines.append(f"    {name:<16} answer-F1 {metrics['answer_f1']:.4f}  "
                         f"(none accepted: {metrics['none_accepted']})")
        for name, value in part["reference"].items():
            lines.append(f"    {name:<16} answer-F1 {value:.4f}")
    return lines



def write_result(result: dict[str, Any], path: Path) -> None:
    """Write ``result`` as indented JSON (the folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
