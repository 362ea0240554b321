#!/usr/bin/env bash
# The small-scale Table 3 comparison of docs/results.md (issue 26 item 4): RLVR and HeRL at trainer.seed
# 3-7 then 0-2, and HeRL with the public code's revision temperature (0.3) at seeds 3 and 4, one run at a
# time. Resumable: rerun it and finished runs are skipped, the unfinished one resumes. A finished run's
# light records (config, data, code revision, metrics, samples, FINISHED) are copied to RECORDS (default
# docs/results/table3/runs, committed: the report reads them, and a run recorded there is not run again on
# a new machine); then its checkpoints are deleted (1.4 GB each; its 0.5 GB export stays for evaluation).
# An unfinished run keeps its checkpoint to resume from. ROOT (default runs/table3) holds one folder per arm.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${ROOT:-runs/table3}
records=${RECORDS:-docs/results/table3/runs}
python=${PYTHON:-.venv/bin/python}
record_files=(config.json data.json git_revision.txt metrics.jsonl samples.jsonl FINISHED)

run_arm() {  # ARM SEED CONFIG [TRAINER FLAGS...]
  local arm=$1 seed=$2 config=$3
  shift 3
  local run="$arm/seed=$seed"
  if [ -f "$records/$run/FINISHED" ]; then
    echo "$records/$run is recorded as finished; skipped"
    return
  fi
  "$python" launch/sweep.py --config "$config" --root "$root/$arm" --grid "trainer.seed=$seed" \
      -- --config.trainer.keep_checkpoints=1 "$@"
  if [ ! -f "$root/$run/FINISHED" ]; then
    echo "$root/$run stopped before its last step; rerun $0 to resume it" >&2
    exit 1
  fi
  mkdir -p "$records/$run"
  for file in "${record_files[@]}"; do
    if [ -f "$root/$run/$file" ]; then cp "$root/$run/$file" "$records/$run/"; fi
  done
  rm -rf "$root/$run/checkpoints"
}

for seed in 3 4 5 6 7 0 1 2; do
  run_arm rlvr "$seed" configs/small.py:rlvr
  run_arm herl "$seed" configs/small.py:herl
  if [ "$seed" = 3 ] || [ "$seed" = 4 ]; then
    run_arm herl_revision_t0.3 "$seed" configs/small.py:herl --config.revision.temperature=0.3
  fi
done
