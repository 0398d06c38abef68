"""Rerank latency and memory: the validator vs a naive loop, in the same run.

One question with 10 candidates (its gold query and 9 same-shaped distractors from the
LC-QuAD 2.0 test split).  The naive loop does, per candidate, an rdflib ``prepareQuery`` and
``model.encode([question, candidate])``.  The validator (warm: model loaded, parser workers
started) validates, lints, scores and ranks all ten.  Requests alternate between the two so
that machine noise hits both; medians are reported, and the ratio is the figure to read.

Validator figures: ``cold_cache`` clears the embedding cache before every request (each
request is new text, the honest comparison) and ``repeat`` sends the same request again
(what a pipeline retrying a question sees).  The validator runs at its default precision
(``auto``: bf16 on a CPU with native bf16, else fp32; the result names which) and, in the same
loop, at ``fp32`` (what a CPU without native bf16 gets).  The naive loop is always plain fp32.

Memory: a separate ``kgqa-validator rerank --jsonl`` process over the same requests; its peak
resident set size is read from the operating system after it exits.

    python benchmarks/bench_rerank.py [--data ../shared/data] [--questions 90]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--questions", type=int, default=90)
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks" / "results" / "rerank_latency.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rdflib.plugins.sparql import prepareQuery

    from kgqa_validator import Validator
    from kgqa_validator.builtin.scoring import encoder_for
    from kgqa_validator.model.data import load_examples
    from kgqa_validator.model.evaluate import candidate_sets
    from kgqa_validator.prefixes import WIKIDATA_PREFIXES

    sets = [s for s in candidate_sets(load_examples(args.data / "lcquad2" / "test.json"), 10_000)
            if len(s[1]) == 10][: args.questions + 1]
    validator = Validator(autoload=False, model_path=args.model)
    encoder = encoder_for(validator.settings)
    fp32 = Validator(autoload=False, model_path=args.model, precision="fp32")
    fp32_encoder = encoder_for(fp32.settings)
    validator.validate(*sets[0])  # warm: model loaded, workers started
    fp32.validate(*sets[0])
    # The naive loop gets its own plain model, so nothing the validator does to its encoder
    # (precision, caching) reaches the baseline.
    from kgqa_validator.model.loading import load_sentence_model

    model = load_sentence_model(fp32_encoder.model_dir, device="cpu")
    model.eval()

    def naive(question: str, candidates: list[str]) -> None:
        for candidate in candidates:
            prepareQuery(candidate, initNs=WIKIDATA_PREFIXES)
            model.encode([question, candidate], convert_to_numpy=True, normalize_embeddings=True,
                         show_progress_bar=False)

    naive_s, cold_s, repeat_s, fp32_s = [], [], [], []
    for question, candidates in sets[1:]:
        start = time.perf_counter()
        naive(question, candidates)
        naive_s.append(time.perf_counter() - start)
        encoder._cache.clear()
        start = time.perf_counter()
        validator.validate(question, candidates)
        cold_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        validator.validate(question, candidates)
        repeat_s.append(time.perf_counter() - start)
        fp32_encoder._cache.clear()
        start = time.perf_counter()
        fp32.validate(question, candidates)
        fp32_s.append(time.perf_counter() - start)

    median = statistics.median
    result = {
        "what": "rerank of one question with 10 candidates, warm, seconds (medians)",
        "questions": len(naive_s),
        "precision": encoder.precision,
        "naive_loop_s": median(naive_s),
        "validator_cold_cache_s": median(cold_s),
        "validator_repeat_s": median(repeat_s),
        "validator_fp32_cold_cache_s": median(fp32_s),
        "ratio_cold_cache": median(cold_s) / median(naive_s),
        "ratio_repeat": median(repeat_s) / median(naive_s),
        "ratio_fp32_cold_cache": median(fp32_s) / median(naive_s),
        "target_ratio": 1 / 3,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }

    with tempfile.TemporaryDirectory() as tmp:
        requests = Path(tmp) / "requests.jsonl"
        requests.write_text("".join(json.dumps({"question": q, "candidates": c}) + "\n"
                                    for q, c in sets))
        command = [sys.executable, "-m", "kgqa_validator.cli", "rerank", "--jsonl", str(requests),
                   "--output", str(Path(tmp) / "out.jsonl"), "--no-plugins"]
        if args.model:
            command += ["--model", str(args.model)]
        subprocess.run(command, check=False, capture_output=True)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["rerank_process_peak_rss_mb"] = round(peak_kib / 1024, 1)
    result["memory_target_mb"] = 1536

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
