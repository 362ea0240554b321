#!/usr/bin/env bash
# The small-scale SFT and DPO baselines of docs/results.md (issue 26 item 2) at trainer.seed 0-2, one run
# at a time, on the data herl_jax/build_offline_data.py wrote into the package. Resumable like
# scripts/table3.sh (scripts/runs.sh). ROOT (default runs/small): the run directories; RECORDS (default
# docs/results/small/runs): their committed records.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/small}
RECORDS=${RECORDS:-docs/results/small/runs}
source scripts/runs.sh

for seed in 0 1 2; do
  for variant in sft dpo; do
    run_arm "$variant" "$seed" "configs/small.py:$variant"
  done
done
