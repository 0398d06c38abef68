#!/usr/bin/env bash
# Trains the shipped model (recipe v2: stage 1 `default`, stage 2 `labelized-stage`, stage 3
# `generator-stage`, chained in one command) and the seed (reference) recipe, and evaluates the
# previous shipped model and the new one side by side in one run. build/v2 is what ships in
# kgqa_validator/model/shipped/ (copy its files there, without stage*/ and checkpoint/).
# Pass a second argument (a model folder, e.g. the 0.1.0 weights) to start stage 3 from it
# instead of running stages 1-2 (which reproduce those weights).
# CPU, 2 quiet cores: about 55 min (stage 1) + 7 min (stage 2) + 1.2 s/step for stage 3.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
BASE="${2:-}"
export HF_HUB_OFFLINE=1
kgqa-validator train --recipe v2 --data-dir "$DATA" --output build/v2 ${BASE:+--base "$BASE"}
kgqa-validator evaluate --test "$DATA/lcquad2/test.json" \
  --labelized "$DATA/lcquad2-labelized/test.jsonl" \
  --human "$DATA/wikidata-human/train.jsonl" --noa "$DATA/lc-quad-noa/train_balanced.json" \
  --model build/model-0.1.0 --model build/v2 --limit 500 \
  --output-json benchmarks/results/model_eval_v2.json --card benchmarks/results/MODEL_CARD.md
