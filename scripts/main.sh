#!/usr/bin/env bash
# Sets up .venv and runs the main job on CPU: HeRL training of the built-in SmolLM2-135M-Instruct on the
# bundled instruction-following data with programmatic rubric rewards (configs/demo.py).
# Extra arguments go to the trainer, e.g.  bash scripts/main.sh --config.trainer.steps=10
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
exec .venv/bin/python -m herl_jax.train --config configs/demo.py --workdir "${WORKDIR:-runs/demo}" "$@"
