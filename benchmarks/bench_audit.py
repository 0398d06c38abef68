"""Dataset audit throughput: the local engine vs a naive loop, in the same run, and the Ray engine.

The naive loop does, per pair, an rdflib ``prepareQuery`` of the query and
``model.encode([question, query])`` with the same (shipped) model, fp32.  The local engine
(warm: model loaded, parser workers started) audits the same pairs in batches: parsing on the
parser processes, lints, question checks, groups, scoring of question, paraphrase and query in
one encoder call per batch.  Rounds alternate between the two on the same slices of the
LC-QuAD 2.0 test split so that machine noise hits both; the ratio is the figure to read.

Memory: a separate ``kgqa-validator audit`` process over the first ``--memory-pairs`` pairs
(memory does not grow with the input: everything streams); the peak of the summed resident
set of it and its parser processes, sampled every 0.2 s, and the sum of their VmHWM.

Ray: ``--engine ray`` on a local cluster (``ray.init(num_cpus=2)``) over the rounds' pairs,
end to end (actor start and model load included: the cost a user pays on one machine).

    python benchmarks/bench_audit.py [--data ../shared/data] [--rounds 3] [--round-size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def _tree_rss_mb(pid: int) -> float:
    """Resident set of ``pid`` and all its descendants, MB (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def _tree_hwm_mb(pid: int) -> float:
    """Sum of the peak resident sets (VmHWM) of ``pid`` and its descendants, MB: an upper
    bound of the tree's peak, read while the processes still exist."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def peak_memory(test_file: Path, pairs: int) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    subset = out / "subset.jsonl"
    with subset.open("w") as stream:
        for record in json.loads(test_file.read_text())[:pairs]:
            stream.write(json.dumps(record) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "kgqa_validator.cli", "audit", str(subset),
                                "--out", str(out / "audit"), "--quiet", "--no-plugins"], env=env,
                               stdout=subprocess.DEVNULL)
    peak = hwm = 0.0
    while process.poll() is None:
        peak = max(peak, _tree_rss_mb(process.pid))
        hwm = max(hwm, _tree_hwm_mb(process.pid))
        time.sleep(0.2)
    seconds = time.monotonic() - started
    summary = json.loads((out / "audit" / "summary.json").read_text())
    return {"peak_rss_mb_sampled": round(peak, 1), "peak_rss_mb_sum_of_vmhwm": round(hwm, 1),
            "pairs": summary["pairs"],
            "end_to_end_seconds": round(seconds, 1),
            "end_to_end_pairs_per_s": round(summary["pairs"] / seconds, 1),
            "reasons": {k: v["count"] for k, v in summary["reasons"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-size", type=int, default=128)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-pairs", type=int, default=1024,
                        help="pairs of the CLI run whose peak memory is measured (streaming: "
                             "memory does not grow with the input)")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks" / "results" / "audit_throughput.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD", "1")

    from rdflib.plugins.sparql import prepareQuery

    from kgqa_validator.audit.auditor import AuditOptions, Auditor
    from kgqa_validator.audit.engine_local import run_local
    from kgqa_validator.audit.groups import compact, compute_groups
    from kgqa_validator.audit.readers import read_records
    from kgqa_validator.config import Settings
    from kgqa_validator.model.encoder import SHIPPED_MODEL
    from kgqa_validator.model.train import load_sentence_model
    from kgqa_validator.prefixes import WIKIDATA_PREFIXES

    test_file = args.data / "lcquad2" / "test.json"
    records = list(read_records(test_file))
    n = args.rounds * args.round_size
    records = records[:n]
    groups = compact(compute_groups(records))
    workers = os.cpu_count() or 1
    options = AuditOptions(Settings(parse_workers=workers), autoload=False, batch_size=args.round_size)
    auditor = Auditor(options, groups)
    naive_model = load_sentence_model(SHIPPED_MODEL, device="cpu")
    sink_rows: list[int] = []

    def naive(batch: list) -> None:
        for record in batch:
            try:
                prepareQuery(record.sparql or "", initNs=WIKIDATA_PREFIXES)
            except Exception:
                pass  # an invalid query still gets its (useless) score, as a naive script does
            vectors = naive_model.encode([record.question or "", record.sparql or ""],
                                         convert_to_numpy=True, normalize_embeddings=True,
                                         show_progress_bar=False)
            float(vectors[0] @ vectors[1])

    # Warm both: the model loaded, the parser workers started, rdflib's grammar built.
    naive(records[:4])
    run_local(auditor, records[:8], lambda rows: None)
    naive_s = local_s = 0.0
    for r in range(args.rounds):
        chunk = records[r * args.round_size:(r + 1) * args.round_size]
        t = time.perf_counter()
        naive(chunk)
        naive_s += time.perf_counter() - t
        t = time.perf_counter()
        run_local(auditor, chunk, lambda rows: sink_rows.append(len(rows)))
        local_s += time.perf_counter() - t
        print(f"round {r + 1}/{args.rounds}: naive {naive_s:.1f}s local {local_s:.1f}s", file=sys.stderr)
    assert sum(sink_rows) == n
    result: dict = {
        "pairs": n, "rounds": args.rounds, "cpus": os.cpu_count(),
        "machine": platform.machine(), "python": platform.python_version(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "naive_pairs_per_s": round(n / naive_s, 2),
        "local_pairs_per_s": round(n / local_s, 2),
        "local_vs_naive": round(naive_s / local_s, 2),
        "local_parser_workers": workers, "scorer_precision": auditor.scorer.precision
        if auditor.scorer else None,
    }
    if not args.skip_ray:
        result["ray"] = ray_run(options, groups, records)
    if not args.skip_memory:
        result["cli_process"] = peak_memory(test_file, args.memory_pairs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


def ray_run(options, groups, records) -> dict:
    try:
        import ray
    except ImportError:
        return {"skipped": "ray is not installed"}
    from kgqa_validator.audit.engine_ray import run_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    count = [0]
    lock = threading.Lock()

    def sink(rows: list) -> None:
        with lock:
            count[0] += len(rows)

    try:
        t = time.perf_counter()
        run_ray(options, groups, records, sink, actors=2)
        seconds = time.perf_counter() - t
    finally:
        ray.shutdown()
    return {"actors": 2, "pairs": count[0], "seconds_end_to_end": round(seconds, 1),
            "pairs_per_s_end_to_end": round(count[0] / seconds, 2)}


if __name__ == "__main__":
    sys.exit(main())
