#!/usr/bin/env bash
# Sets up .venv with the test extras and runs the whole test suite on CPU (pytest, two workers: much of a
# test's time is single-threaded compilation and subprocess start-up, so two workers fill the two cores;
# loadscope keeps a module's tests on one worker, so its module-scoped fixtures are built once; without
# xdist's reordering by test count, modules go out in tests/conftest.py's order, the longest first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder --durations=20 "$@" tests
