"""Fixed evaluation sets and the metrics of ``kgqa-validator evaluate``.

Sets (all built deterministically from the test files, seed 0; every query read as the scorer
reads it at run time: the canonical scoring text, property ids labelled from the shipped table):

``random``
    the reference model card's set: each question with its gold query (1) and with a random
    other query (0); AP, accuracy, F1, precision, recall and their best thresholds, plus the
    accuracy at the model's *stored* threshold.
``hard``
    each question with its gold query and up to 9 *same-shaped* distractors (another test
    query of the same template with other ids): the binary metrics over all pairs, and
    reranking hits@1 / MRR over the candidate sets.  This is what reranking generated
    candidates needs.
``random_verbalised`` / ``hard_verbalised``
    the same sets with ids replaced by labels (given ``labels``), as the scorer reads
    candidates when a label source is configured.
``labelized_hard``
    the hard set built from the labelized test file (labels written by its authors).
``noa_twins``
    LC-QuAD-NoA twins of the development slice: the twin's question with its own query (gold)
    and the original query (:mod:`kgqa_validator.model.devsets`); ``noa_twins_property`` and
    ``noa_twins_entity`` split them by what the twin swapped (entity twins differ only in a
    Q-id, which an ids-only scorer cannot read: a coin flip without ``--labels``);
    ``noa_twins_verbalised`` reads them with ``labels``, and ``noa_twins_entity_verbalised``
    the entity twins whose two swapped ids ``labels`` names.
``hard_decided``
    the ``hard`` sets decided by the whole validator (consensus and decision rules included),
    in a seeded order: what reranking a template generator's candidates gets.
``generator``
    the generator-like sets of the human-written development slice (gold with its PREFIX lines
    and the wrong variants a generator writes), decided by the whole validator at its default
    settings: hits@1 of the decided ranking, the encoder's own hits@1, the rate at which the
    gold is rejected and the rate at which wrong candidates are accepted (also per kind).

Models are scored through the run-time :class:`~kgqa_validator.model.encoder.Encoder`.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kgqa_validator.model.card import model_card
from kgqa_validator.model.data import Example, load_examples, query_shape
from kgqa_validator.model.devsets import (
    CandidateSet,
    decision_metrics,
    generator_sets,
    noa_twin_sets,
    shuffled_set,
)
from kgqa_validator.model.encoder import SHIPPED_MODEL, Encoder, read_threshold
from kgqa_validator.model.metrics import (
    accuracy_at,
    average_precision,
    best_accuracy_threshold,
    best_f1_threshold,
    reciprocal_rank,
)
from kgqa_validator.model.precision import resolve
from kgqa_validator.properties import PropertyTable
from kgqa_validator.scoring_text import ids_in, scoring_text
from kgqa_validator.types import Decision, Precision

SEED = 0
MAX_DISTRACTORS = 9


def random_pairs(examples: Sequence[Example], limit: int) -> list[tuple[str, str, int]]:
    """Gold and random-other pairs, half each, for up to ``limit`` examples."""
    rng = random.Random(SEED)
    chosen = list(examples)
    rng.shuffle(chosen)
    chosen = chosen[:limit]
    queries = [e.sparql for e in examples]
    pairs = []
    for example in chosen:
        other = example.sparql
        while other == example.sparql:
            other = rng.choice(queries)
        pairs.append((example.questions[0], example.sparql, 1))
        pairs.append((example.questions[0], other, 0))
    return pairs


def candidate_sets(examples: Sequence[Example], limit: int) -> list[tuple[str, list[str]]]:
    """(question, [gold, distractor ...]) for examples with same-shaped rivals."""
    rng = random.Random(SEED)
    by_shape: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_shape[query_shape(example.sparql)].append(example.sparql)
    sets = []
    for example in examples:
        rivals = sorted({q for q in by_shape[query_shape(example.sparql)] if q != example.sparql})
        if not rivals:
            continue
        rng.shuffle(rivals)
        sets.append((example.questions[0], [example.sparql, *rivals[:MAX_DISTRACTORS]]))
    rng.shuffle(sets)
    return sets[:limit]


def binary_metrics(scores: Sequence[float], labels: Sequence[int],
                   stored_threshold: float | None) -> dict[str, float]:
    acc_threshold, accuracy = best_accuracy_threshold(scores, labels)
    f1_threshold, f1, precision, recall = best_f1_threshold(scores, labels)
    metrics = {
        "ap": average_precision(scores, labels),
        "accuracy": accuracy,
        "accuracy_threshold": acc_threshold,
        "f1": f1,
        "f1_threshold": f1_threshold,
        "precision": precision,
        "recall": recall,
        "pairs": float(len(scores)),
    }
    if stored_threshold is not None:
        metrics["accuracy_at_stored_threshold"] = accuracy_at(scores, labels, stored_threshold)
    return metrics


def _texts(sets: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    for kind, data in sets.values():
        if kind == "pairs":
            for q, s, _ in data:
                texts += [q, s]
        elif kind == "sets":
            for q, cands in data:
                texts += [q, *cands]
    return texts


def _evaluate_sets(encoder: Encoder, sets: Mapping[str, Any], stored: float | None) -> dict[str, Any]:
    encoder.encode(list(dict.fromkeys(_texts(sets))))  # one batched pass over every distinct text

    def cosine(a: str, b: str) -> float:
        return encoder.similarity(a, [b])[0]

    results: dict[str, Any] = {}
    for name, (kind, data) in sets.items():
        if kind == "pairs":
            scores = [cosine(q, s) for q, s, _ in data]
            results[name] = binary_metrics(scores, [y for _, _, y in data], stored)
            continue
        if kind != "sets":
            continue
        pair_scores: list[float] = []
        pair_labels: list[int] = []
        hits = 0
        rr = 0.0
        for question, candidates in data:
            values = encoder.similarity(question, candidates)
            pair_scores += values
            pair_labels += [1] + [0] * (len(values) - 1)
            r = reciprocal_rank(values, 0)
            rr += r
            hits += r == 1.0
        metrics = binary_metrics(pair_scores, pair_labels, stored)
        metrics["hits@1"] = hits / len(data) if data else 0.0
        metrics["mrr"] = rr / len(data) if data else 0.0
        metrics["sets"] = float(len(data))
        metrics["mean_candidates"] = (sum(len(c) for _, c in data) / len(data)) if data else 0.0
        results[name] = metrics
    return results


def decided_sets(hard: Sequence[tuple[str, list[str]]]) -> list[CandidateSet]:
    """The same-shaped sets (gold first) for the whole validator, in a seeded order."""
    rng = random.Random(SEED)
    return [shuffled_set(question, candidates[0], [(c, "same_shape") for c in candidates[1:]], rng)
            for question, candidates in hard]


def _evaluate_decisions(folder: Path, precision: str, sets: Mapping[str, Any],
                        labels_files: Sequence[Path],
                        consensus_weight: float | None = None) -> dict[str, Any]:
    """The decided sets, through the whole validator at its default settings (but
    ``consensus_weight``, when given)."""
    from kgqa_validator.config import Settings
    from kgqa_validator.validator import Validator

    settings = Settings(model_path=folder, precision=Precision(precision),
                        labels_files=tuple(labels_files))
    if consensus_weight is not None:
        settings = settings.with_consensus_weight(consensus_weight)
    validator = Validator(settings, autoload=False)
    results: dict[str, Any] = {}
    for name, (kind, data) in sets.items():
        if kind != "decided":
            continue
        ranked, accepted, encoder_hits = [], [], 0
        for cset in data:
            report = validator.validate(cset.question, list(cset.candidates))
            ranked.append([v.candidate.index for v in report.verdicts])
            decided = {v.candidate.index: v.decision is Decision.ACCEPTED for v in report.verdicts}
            accepted.append([decided[i] for i in range(len(cset.candidates))])
            # The encoder's own cosine (not the combined score): how far the encoder alone gets.
            scores = {v.candidate.index: s.value for v in report.verdicts for s in v.scores
                      if s.producer == "encoder"}
            gold = scores.get(cset.gold)
            encoder_hits += gold is not None and all(
                s < gold for i, s in scores.items() if i != cset.gold)
        metrics = decision_metrics(data, ranked, accepted)
        metrics["encoder_hits@1"] = encoder_hits / (len(data) or 1)
        results[name] = metrics
    return results


def build_sets(test: Path, labelized: Path | None, labels: Mapping[str, str],
               limit: int, human: Path | None = None, noa: Path | None = None,
               properties: PropertyTable | None = None) -> dict[str, tuple[str, Any]]:
    """Every set, texts as the scorer reads them at run time: the canonical scoring text with
    the property table's labels (unless ``properties`` is ``None``); the ``_verbalised`` sets
    add ``labels`` (entity labels) on top."""
    plabels = properties.labels() if properties is not None else {}

    def text(sparql: str, extra: Mapping[str, str] | None = None) -> str:
        return scoring_text(sparql, {**plabels, **(extra or {})})

    examples = [e for e in load_examples(test) if e.label == 1]
    random_set = random_pairs(examples, limit)
    hard = candidate_sets(examples, limit)
    sets: dict[str, tuple[str, Any]] = {
        "random": ("pairs", [(q, text(s), y) for q, s, y in random_set]),
        "hard": ("sets", [(q, [text(c) for c in cands]) for q, cands in hard]),
        "hard_decided": ("decided", decided_sets(hard)),
    }
    if labels:
        sets["random_verbalised"] = ("pairs", [(q, text(s, labels), y) for q, s, y in random_set])
        sets["hard_verbalised"] = ("sets", [(q, [text(c, labels) for c in cands])
                                            for q, cands in hard])
    if labelized is not None:
        lab = [e for e in load_examples(labelized) if e.label == 1]
        sets["labelized_hard"] = ("sets", [(q, [text(c) for c in cands])
                                           for q, cands in candidate_sets(lab, limit)])
    if noa is not None:
        twins = noa_twin_sets(noa, limit)
        sets["noa_twins"] = ("sets", [(t.question, [text(t.candidates[t.gold]),
                                                    text(t.candidates[1 - t.gold])]) for t in twins])
        # The two halves apart: an entity twin needs entity labels, which ids-only scoring lacks.
        for kind in ("property", "entity"):
            sets[f"noa_twins_{kind}"] = ("sets", [
                (t.question, [text(t.candidates[t.gold]), text(t.candidates[1 - t.gold])])
                for t in twins if t.kinds[1 - t.gold] == kind])
        if labels:
            # What a labels file (or the endpoint) gives the twins: all of them, and the entity
            # twins whose two swapped ids it names (the others still read alike).
            def named(t: CandidateSet) -> bool:
                swapped = set(ids_in(t.candidates[0])) ^ set(ids_in(t.candidates[1]))
                return t.kinds[1 - t.gold] == "entity" and swapped <= labels.keys()

            for name, chosen in (("noa_twins_verbalised", twins),
                                 ("noa_twins_entity_verbalised", [t for t in twins if named(t)])):
                sets[name] = ("sets", [
                    (t.question, [text(t.candidates[t.gold], labels),
                                  text(t.candidates[1 - t.gold], labels)]) for t in chosen])
    if human is not None and properties is not None:
        sets["generator"] = ("decided", generator_sets(human, properties, limit))
    return sets


def evaluate_models(
    models: Sequence[Path | None], *, test: Path, labelized: Path | None = None,
    labels: Mapping[str, str] | None = None, limit: int = 2000, json_path: Path | None = None,
    card_path: Path | None = None, progress: bool = True, precisions: Sequence[str] = ("fp32",),
    human: Path | None = None, noa: Path | None = None, property_table: bool = True,
    labels_files: Sequence[Path] = (), workers: int = 1, consensus_weight: float | None = None,
) -> dict[str, Any]:
    """Evaluate each model folder (``None`` = the shipped model) on the same fixed sets.

    Each model is evaluated at each of ``precisions`` (as ``rerank --precision`` scores); a
    precision other than fp32 is named ``<model> (<precision>)``.  ``human`` (human-written
    questions) adds the generator-like sets of its development slice, decided by the whole
    validator; ``noa`` (LC-QuAD-NoA) the twin sets.  ``workers`` > 1 evaluates models in
    that many processes at once.
    """
    from kgqa_validator.properties import shipped_properties

    properties = shipped_properties() if property_table else None
    sets = build_sets(test, labelized, labels or {}, limit, human, noa, properties)
    result: dict[str, Any] = {
        "test": str(test), "labelized": str(labelized) if labelized else None,
        "human": str(human) if human else None, "noa": str(noa) if noa else None,
        "property_table": property_table, "consensus_weight": consensus_weight,
        "limit": limit, "seed": SEED,
        "sets": {name: len(data) for name, (_, data) in sets.items()},
        "set_kinds": {name: kind for name, (kind, _) in sets.items()},
        "models": {}, "recipes": {}, "precisions": {},
    }
    jobs = [(model, precision) for precision in dict.fromkeys(resolve(p) for p in precisions)
            for model in models]
    if workers > 1 and len(jobs) > 1:
        # One process per model and precision: each loads its own model and encodes on its own
        # core, and the results come back in the order asked.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no torch state shared with a fork
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(_evaluate_model, sets, model, precision, tuple(labels_files),
                                   consensus_weight)
                       for model, precision in jobs]
            outcomes = [f.result() for f in futures]
    else:
        outcomes = [_evaluate_model(sets, model, precision, labels_files, consensus_weight)
                    for model, precision in jobs]
    for name, metrics, recipe, precision in outcomes:
        result["models"][name] = metrics
        result["recipes"][name] = recipe
        result["precisions"][name] = precision
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    if card_path:
        card_path.parent.mkdir(parents=True, exist_ok=True)
        card_path.write_text(model_card(result))
    return result


def _evaluate_model(sets: Mapping[str, Any], model: Path | None, precision: str,
                    labels_files: Sequence[Path], consensus_weight: float | None = None,
                    ) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """(name, metrics, the model's recipe and thresholds, precision) of one model."""
    folder = Path(model) if model else SHIPPED_MODEL
    stored = read_threshold(folder, precision) if (folder / "threshold.json").is_file() else None
    encoder = Encoder(folder, cache_size=1_000_000, precision=precision)
    name = (str(model) if model else "shipped") + ("" if precision == "fp32" else f" ({precision})")
    metrics = {**_evaluate_sets(encoder, sets, stored),
               **_evaluate_decisions(folder, precision, sets, labels_files, consensus_weight)}
    meta_file = folder / "threshold.json"
    recipe = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return name, metrics, recipe, precision
