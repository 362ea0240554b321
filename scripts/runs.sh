# Sourced by scripts/table3.sh and scripts/offline_baselines.sh: run_arm trains one run of a comparison
# (resumable) and records it. ROOT holds the run directories (one folder per arm), RECORDS the committed light
# records of the finished ones (config, data, code revision, metrics, samples, FINISHED: what the report
# reads). A run recorded as finished is skipped, so a new machine does not train it again. A finished run's
# checkpoints are deleted (1.4 GB each; its 0.5 GB export stays for evaluation); an unfinished run keeps its
# checkpoint to resume from.
python=${PYTHON:-.venv/bin/python}
record_files=(config.json data.json git_revision.txt metrics.jsonl samples.jsonl FINISHED)

run_arm() {  # ARM SEED CONFIG [TRAINER FLAGS...]
  local arm=$1 seed=$2 config=$3
  shift 3
  local run="$arm/seed=$seed"
  if [ -f "$RECORDS/$run/FINISHED" ]; then
    echo "$RECORDS/$run is recorded as finished; skipped"
    return
  fi
  "$python" launch/sweep.py --config "$config" --root "$ROOT/$arm" --grid "trainer.seed=$seed" \
      -- --config.trainer.keep_checkpoints=1 "$@"
  if [ ! -f "$ROOT/$run/FINISHED" ]; then
    echo "$ROOT/$run stopped before its last step; rerun $0 to resume it" >&2
    exit 1
  fi
  mkdir -p "$RECORDS/$run"
  for file in "${record_files[@]}"; do
    if [ -f "$ROOT/$run/$file" ]; then cp "$ROOT/$run/$file" "$RECORDS/$run/"; fi
  done
  rm -rf "$ROOT/$run/checkpoints"
}
