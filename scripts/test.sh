#!/usr/bin/env bash
# Sets up .venv with the test extras and runs the whole test suite on CPU (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m pytest -q "$@" tests
