#!/usr/bin/env bash
# One command for one GPU (H100 / H200, no network): correctness first, then the side-by-side benchmarks
# at GPU shapes, the decode program's memory analysis, and the decode and training steps at the sharding
# layouts timed beside their predictions (benchmarks/layouts.py); writes OUT/gpu.json and OUT/gpu.md.
#
#   bash benchmarks/gpu.sh [--out DIR]     on the GPU machine; each part has a time limit (about 11 minutes in all)
#   bash benchmarks/gpu.sh --dry-run       on CPU with tiny shapes (about a minute unloaded), so it cannot rot
#
# A part that fails or runs out of time is marked in the log and the exit status; the others still run.
# Python: $PYTHON, else .venv/bin/python, else python.
set -uo pipefail
cd "$(dirname "$0")/.."

dry_run=0
out=benchmarks/out/gpu
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --out) out="$2"; shift ;;
    *) echo "usage: bash benchmarks/gpu.sh [--dry-run] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
python="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/gpu.md
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

part() {  # part NAME SECONDS COMMAND...: runs COMMAND under a time limit, logging to OUT/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  if timeout "$limit" "$@" >"$out/$name.log" 2>&1; then
    tail -n 4 "$out/$name.log"
  else
    echo "FAILED or timed out: $name (see $out/$name.log)"; tail -n 8 "$out/$name.log"; status=1
  fi
}

if [ "$dry_run" = 1 ]; then
  export JAX_PLATFORMS=cpu
  part greedy 120 "$python" benchmarks/gpu_checks.py greedy "$out/check_greedy.json" --dry-run
  part bf16 120 "$python" benchmarks/gpu_checks.py bf16 "$out/check_bf16.json" --dry-run
  part memory 60 "$python" benchmarks/gpu_checks.py memory "$out/check_memory.json" --dry-run
  part sampler 120 "$python" benchmarks/sampler.py --models tiny --batches 2 --prompt-len 8 --new-tokens 8 \
    --repeats 1 --out "$out/sampler.json"
  part train_step 300 "$python" benchmarks/train_step.py --model smollm2-135m --num-layers 1 --batch 2 --seq 32 \
    --micro-batch 2 --steps 1 --warmup 0 --out "$out/train_step.json"
  part herl_step 420 "$python" benchmarks/herl_step.py --model smollm2-135m --num-layers 1 --prompts 1 --n 2 --new-tokens 4 \
    --micro-batch 3 --steps 1 --out "$out/herl_step.json"
  part layout_decode 120 "$python" benchmarks/layouts.py decode "$out/layout_decode.json" --dry-run
  part layout_train 120 "$python" benchmarks/layouts.py train "$out/layout_train.json" --dry-run
else
  export XLA_PYTHON_CLIENT_PREALLOCATE=false  # torch shares the GPU
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
  part greedy 60 "$python" benchmarks/gpu_checks.py greedy "$out/check_greedy.json"
  part bf16 60 "$python" benchmarks/gpu_checks.py bf16 "$out/check_bf16.json"
  part memory 40 "$python" benchmarks/gpu_checks.py memory "$out/check_memory.json"
  part sampler_0.5b 110 "$python" benchmarks/sampler.py --device gpu --models qwen2.5-0.5b --batches 64 --repeats 1 \
    --out "$out/sampler_0.5b.json"
  part sampler_7b 100 "$python" benchmarks/sampler.py --device gpu --models qwen2.5-7b --batches 64 --repeats 1 \
    --no-static --new-tokens 128 --out "$out/sampler_7b.json"
  part train_step 60 "$python" benchmarks/train_step.py --device gpu --steps 5 --warmup 1 --out "$out/train_step.json"
  part herl_step 50 "$python" benchmarks/herl_step.py --device gpu --steps 1 --out "$out/herl_step.json"
  part layout_decode 120 "$python" benchmarks/layouts.py decode "$out/layout_decode.json"
  part layout_train 90 "$python" benchmarks/layouts.py train "$out/layout_train.json"
fi
"$python" benchmarks/gpu_checks.py report "$out" || status=1
echo "wrote $out/gpu.json and $out/gpu.md (exit status $status)"
exit $status
