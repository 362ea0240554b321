"""evaluate's resumed records are keyed by the weights (issue 27 item 5): the real CLI on a real checkpoint
folder whose weights change in place between two runs into one output folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

from tests.trainer.conftest import REPO


def _evaluate(model, output, env) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "herl_jax.evaluate", "--config", str(REPO / "configs" / "evaluate.py"),
                           "--benchmarks", "ifeval", "--limit", "2", "--checkpoint", f"tiny={model}", "--output",
                           str(output), "--config.greedy.max_new_tokens=4"],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _records(output) -> list[dict]:
    return [json.loads(line) for line in (output / "tiny" / "ifeval" / "pass1.jsonl").read_text().splitlines()]


def test_weights_changed_in_place_are_sampled_again(tiny_checkpoint, subprocess_env, tmp_path):
    model, output = tmp_path / "model", tmp_path / "out"
    shutil.copytree(tiny_checkpoint, model)
    _evaluate(model, output, subprocess_env)
    first = _records(output)
    assert len(first) == 2 and len({r["key"] for r in first}) == 1

    again = _evaluate(model, output, subprocess_env)  # the same weights and settings: resumed, nothing sampled
    assert _records(output) == first and "sampled again" not in again.stderr

    weights = load_file(model / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = (weights[name] + np.float32(0.5)).astype(weights[name].dtype)
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    changed = _evaluate(model, output, subprocess_env)
    records = _records(output)
    assert len(records) == 4 and records[:2] == first
    assert len({r["key"] for r in records[2:]}) == 1 and records[2]["key"] != first[0]["key"]
    assert "2 items stored under other weights or settings are sampled again" in changed.stderr
