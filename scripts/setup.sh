#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs herl-jax with everything it needs, offline-safe at run time.
# Usage: bash scripts/setup.sh [--test]   (--test also installs the PyTorch CPU reference for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${PIP[@]}" -r requirements.txt
"${PIP[@]}" --no-deps -r requirements-nodeps.txt
if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" -r requirements-test.txt
fi
"${PIP[@]}" --no-deps -e .
