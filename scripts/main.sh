#!/usr/bin/env bash
# Sets up .venv and runs the main job on CPU with the built-in SmolLM2-135M-Instruct.
# Until the trainer lands, the main job is a sampled chat completion through our jitted sampler.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
if [ "$#" -eq 0 ]; then
  set -- "Give three short tips for writing clear technical documentation." --n 2 --temperature 0.7
fi
exec .venv/bin/python -m herl_jax.chat "$@"
