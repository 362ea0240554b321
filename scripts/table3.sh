#!/usr/bin/env bash
# The small-scale Table 3 comparison of docs/results.md (issue 26 item 4): RLVR and HeRL at trainer.seed
# 3-7 then 0-2, and HeRL with the public code's revision temperature (0.3) at seeds 3 and 4, one run at a
# time. Resumable: rerun it and finished runs are skipped, the unfinished one resumes (scripts/runs.sh).
# ROOT (default runs/table3): the run directories; RECORDS (default docs/results/table3/runs): their
# committed records, which the report reads.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/table3}
RECORDS=${RECORDS:-docs/results/table3/runs}
source scripts/runs.sh

for seed in 3 4 5 6 7 0 1 2; do
  run_arm rlvr "$seed" configs/small.py:rlvr
  run_arm herl "$seed" configs/small.py:herl
  if [ "$seed" = 3 ] || [ "$seed" = 4 ]; then
    run_arm herl_revision_t0.3 "$seed" configs/small.py:herl --config.revision.temperature=0.3
  fi
done
