"""How often the question lints contradict a *gold* pair (a false alarm).

``form_mismatch`` and ``datatype_mismatch`` read the question's phrasing; since the default
decision rejects a contradicted candidate when one that fits the question ranks above it, a
lint that fires on a gold query can cost the right answer.  This counts, on gold pairs, how
often each fires, and lists the questions it fired on (to read, not to tune to):

    python benchmarks/lint_precision.py --data-dir ../shared/data \
        --output-json benchmarks/results/lint_precision.json

Sets: the human-written questions of ``wikidata-human/train.jsonl`` (QALD, WebQuestions,
SPINACH styles) and the LC-QuAD 2.0 test set (question and paraphrase).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from kgqa_validator import Validator
from kgqa_validator.types import Candidate, Question

CODES = ("form_mismatch", "datatype_mismatch")


def _human(data_dir: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (data_dir / "wikidata-human/train.jsonl").open()]
    return [(r["question"], r["sparql"]) for r in rows if r.get("question") and r.get("sparql")]


def _lcquad(data_dir: Path) -> list[tuple[str, str]]:
    pairs = []
    for row in json.loads((data_dir / "lcquad2/test.json").read_text()):
        for key in ("question", "paraphrased_question"):
            text = row.get(key)
            if isinstance(text, str) and len(text.strip()) > 5 and "{" not in text:
                pairs.append((text, row["sparql_wikidata"]))
    return pairs


def measure(validator: Validator, pairs: list[tuple[str, str]], examples: int) -> dict[str, object]:
    found = validator.check_pairs([(Question(q), Candidate(s, i)) for i, (q, s) in enumerate(pairs)])
    fired: Counter[str] = Counter()
    shown: dict[str, list[str]] = {code: [] for code in CODES}
    for (question, _), assessment in zip(pairs, found, strict=True):
        for code in {d.code for d in assessment.diagnostics} & set(CODES):
            fired[code] += 1
            if len(shown[code]) < examples:
                shown[code].append(question)
    n = len(pairs)
    return {"pairs": n, **{f"{code}_rate": round(fired[code] / n, 4) for code in CODES},
            **{f"{code}_count": fired[code] for code in CODES}, "examples": shown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--examples", type=int, default=25)
    parser.add_argument("--output-json", type=Path)
    args = parser.parse_args()
    validator = Validator()
    result = {"human": measure(validator, _human(args.data_dir), args.examples),
              "lcquad_test": measure(validator, _lcquad(args.data_dir), args.examples)}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.output_json:
        args.output_json.write_text(text + "\n")


if __name__ == "__main__":
    main()
