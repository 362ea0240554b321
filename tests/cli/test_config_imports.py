"""Loading and checking a config file, and `--help`, import no JAX or Flax (issue 24): the seconds of those
imports wait for the command's `main`. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.trainer.conftest import REPO

HEAVY = ("jax", "flax", "optax", "orbax")

# Loads the config file through the CLIs' own flag (herl_jax.cli_flags), checks it as the CLI does, and
# prints the heavy packages that got imported.
LOAD = f"""
import sys
from herl_jax.cli_flags import define_config_file, parse_flags
flag = define_config_file("config", None, "config file")
parse_flags(["prog", "--config", sys.argv[1]])
if sys.argv[1] == "configs/evaluate.py":
    from herl_jax.evaluation.config import resolve
else:
    from herl_jax.config import validate as resolve
resolve(flag.value)
print([name for name in {HEAVY!r} if name in sys.modules])
"""


@pytest.mark.parametrize("config", ["configs/demo.py", "configs/paper.py:qwen2.5-7b,herl,medical",
                                    "configs/small.py:rlvr", "configs/evaluate.py"])
def test_loading_and_checking_a_config_imports_no_jax(config):
    done = subprocess.run([sys.executable, "-c", LOAD, config], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["herl_jax.train", "herl_jax.evaluate"])
def test_help_imports_no_jax(command):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", command, "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert "--config" in done.stdout, done.stderr[-2000:]  # absl's --help exits 1
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not {name.split(".")[0] for name in imported} & set(HEAVY)
