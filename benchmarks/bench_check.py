"""Throughput of ``kgqa-validator check --jsonl`` against a plain rdflib loop, same run.

The issue's target: ``check --jsonl`` over the 6,044 queries of LC-QuAD 2.0's test split must
reach at least 1.5x the throughput of a single-process loop of rdflib's ``prepareQuery``
with the same prefixes.  Both are measured here, interleaved, ``--repeat`` times; the
medians are compared and everything is written to ``benchmarks/results/check_throughput.json``.

The CLI is timed end to end as a user runs it (interpreter start-up, plugin loading, worker
start-up, writing every result line); the rdflib loop is timed around the loop only (its
imports and start-up are not counted), which favours the baseline.

Usage::

    python benchmarks/bench_check.py [--data ../shared/data] [--repeat 3] [--workers N]
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
RESULT = ROOT / "benchmarks" / "results" / "check_throughput.json"

BASELINE = r"""
import json, sys, time
from rdflib.plugins.sparql import prepareQuery
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
queries = [json.loads(line)["sparql"] for line in open(sys.argv[1], encoding="utf-8")]
valid = 0
cpu = time.process_time()
start = time.perf_counter()
for query in queries:
    try:
        prepareQuery(query, initNs=WIKIDATA_PREFIXES)
        valid += 1
    except Exception:
        pass
elapsed = time.perf_counter() - start
cpu = time.process_time() - cpu
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "valid": valid, "queries": len(queries)}))
"""


def _write_input(data: Path, folder: Path) -> tuple[Path, int]:
    source = data / "lcquad2" / "test.json"
    try:
        records = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        sys.exit(f"bench_check: cannot read {source}: {exc.strerror} (give --data)")
    path = folder / "lcquad2_test.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            row = {"uid": record.get("uid"), "question": record.get("question"),
                   "sparql": record.get("sparql_wikidata")}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path, len(records)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_cli(path: Path, output: Path, workers: int | None) -> tuple[float, float, int, int]:
    command = [sys.executable, "-m", "kgqa_validator.cli", "check", "--jsonl", str(path),
               "--output", str(output)]
    if workers:
        command += ["--workers", str(workers)]
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu  # the CLI and its parser workers, start-up included
    if done.returncode not in (0, 1):
        sys.exit(f"bench_check: the CLI failed ({done.returncode}): {done.stderr.strip()}")
    lines = output.read_text(encoding="utf-8").splitlines()
    valid = sum(1 for line in lines if json.loads(line)["valid"])
    return elapsed, cpu, len(lines), valid


def _run_baseline(path: Path) -> tuple[float, float, int]:
    done = subprocess.run([sys.executable, "-c", BASELINE, str(path)], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["cpu_seconds"]), int(result["valid"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--workers", type=int, help="--workers for the CLI (default: one per core)")
    parser.add_argument("--output", type=Path, default=RESULT, help="result JSON file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, count = _write_input(args.data, folder)
        load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
        cli_times: list[float] = []
        base_times: list[float] = []
        cli_cpu: list[float] = []
        base_cpu: list[float] = []
        cli_valid = base_valid = 0
        for run in range(args.repeat):
            seconds, cpu, lines, cli_valid = _run_cli(path, folder / f"out{run}.jsonl",
                                                      args.workers)
            if lines != count:
                sys.exit(f"bench_check: the CLI wrote {lines} lines for {count} queries")
            cli_times.append(seconds)
            cli_cpu.append(cpu)
            seconds, cpu, base_valid = _run_baseline(path)
            base_times.append(seconds)
            base_cpu.append(cpu)
            print(f"run {run + 1}: check --jsonl {cli_times[-1]:.2f} s, "
                  f"rdflib loop {base_times[-1]:.2f} s", flush=True)
        load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    cli_median = statistics.median(cli_times)
    base_median = statistics.median(base_times)
    ratio = base_median / cli_median
    result = {
        "benchmark": "kgqa-validator check --jsonl vs single-process rdflib prepareQuery loop",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "queries": count,
        "data": "lcquad2/test.json",
        "command": "kgqa-validator check --jsonl lcquad2_test.jsonl --output out.jsonl"
                   + (f" --workers {args.workers}" if args.workers else ""),
        "baseline": "for q in queries: rdflib.plugins.sparql.prepareQuery(q, "
                    "initNs=WIKIDATA_PREFIXES)",
        "repeat": args.repeat,
        "check_seconds": [round(t, 3) for t in cli_times],
        "baseline_seconds": [round(t, 3) for t in base_times],
        "check_median_s": round(cli_median, 3),
        "baseline_median_s": round(base_median, 3),
        "check_queries_per_s": round(count / cli_median, 1),
        "baseline_queries_per_s": round(count / base_median, 1),
        "ratio": round(ratio, 3),
        "check_cpu_seconds": [round(t, 3) for t in cli_cpu],
        "baseline_cpu_seconds": [round(t, 3) for t in base_cpu],
        "target_ratio": 1.5,
        "check_valid": cli_valid,
        "baseline_accepted": base_valid,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "notes": "check is timed end to end (start-up included), its CPU time includes the "
                 "parser workers; the baseline loop is timed around the loop only",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"check --jsonl: {count / cli_median:.0f} queries/s (median {cli_median:.2f} s); "
          f"rdflib loop: {count / base_median:.0f} queries/s (median {base_median:.2f} s); "
          f"ratio {ratio:.2f} (target 1.5) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
