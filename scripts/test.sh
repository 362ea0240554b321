#!/usr/bin/env bash
# Sets up .venv with the test extras and runs the whole test suite on CPU (pytest, two workers: much of a
# test's time is single-threaded compilation and subprocess start-up, so two workers fill the two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m pytest -q -n 2 --dist worksteal --durations=20 "$@" tests
