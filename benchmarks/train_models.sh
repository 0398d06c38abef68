#!/usr/bin/env bash
# Trains the seed (reference) recipe and the shipped model (the default recipe, then the
# labelized stage), and evaluates both side by side in one run. The stage-2 folder is what ships
# in kgqa_validator/model/shipped/ (copy its files there).
# CPU, 2 cores: about 55 min (default, 1,633 steps) + 7 min (stage 2, 300 steps) + 15-35 min
# (seed, 750 steps) + 15 min (evaluation of 4 variants).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
export HF_HUB_OFFLINE=1
kgqa-validator train --recipe default \
  --data "$DATA/lcquad2/train.json" --data "$DATA/lc-quad-noa/train_balanced.json" \
  --labels "$DATA/lcquad2/id_labels.json" --exclude "$DATA/lcquad2/test.json" \
  --output build/model-default --resume
kgqa-validator train --recipe labelized-stage --base build/model-default \
  --data "$DATA/lcquad2-labelized/train.jsonl" --data "$DATA/lcquad2/train.json" \
  --labels "$DATA/lcquad2/id_labels.json" --exclude "$DATA/lcquad2/test.json" \
  --exclude "$DATA/lcquad2-labelized/test.jsonl" --max-steps 300 --output build/model-stage2
kgqa-validator train --recipe seed \
  --data "$DATA/lcquad2/train.json" --exclude "$DATA/lcquad2/test.json" \
  --output build/model-seed --resume
kgqa-validator evaluate --test "$DATA/lcquad2/test.json" \
  --labelized "$DATA/lcquad2-labelized/test.jsonl" --labels "$DATA/lcquad2/id_labels.json" \
  --model build/model-seed --model build/model-stage2 \
  --precision fp32 --precision bf16 --precision int8 \
  --output-json benchmarks/results/model_eval.json --card benchmarks/results/MODEL_CARD.md
