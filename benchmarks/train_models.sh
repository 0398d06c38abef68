#!/usr/bin/env bash
# Trains the seed (reference) and default recipes and evaluates both, side by side, in one run.
# The default recipe's output is what ships in kgqa_validator/model/shipped/.
# CPU: about 60 min (default, 1633 steps) + 15-30 min (seed, 750 steps) on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
export HF_HUB_OFFLINE=1
kgqa-validator train --recipe default \
  --data "$DATA/lcquad2/train.json" --data "$DATA/lc-quad-noa/train_balanced.json" \
  --labels "$DATA/lcquad2/id_labels.json" --exclude "$DATA/lcquad2/test.json" \
  --output build/model-default --resume
kgqa-validator train --recipe seed \
  --data "$DATA/lcquad2/train.json" --exclude "$DATA/lcquad2/test.json" \
  --output build/model-seed --resume
kgqa-validator evaluate --test "$DATA/lcquad2/test.json" \
  --labelized "$DATA/lcquad2-labelized/test.jsonl" --labels "$DATA/lcquad2/id_labels.json" \
  --model build/model-seed --model build/model-default \
  --output-json benchmarks/results/model_eval.json --card benchmarks/results/MODEL_CARD.md
