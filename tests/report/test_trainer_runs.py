"""The report on run directories written by the real trainer CLI (tiny model, 2 steps, two seeds)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.report.test_synthetic_runs import PNG_MAGIC, T_TABLE
from tests.trainer.conftest import REPO, config_arg

RUN_LIMIT_S = 900  # start-up, compile and 2 steps on a loaded 2-core box


def train(workdir, arg, seed, env):
    command = [sys.executable, "-m", "herl_jax.train", "--config", f"{REPO}/tests/trainer/tiny_config.py:{arg}",
               "--workdir", str(workdir), f"--config.trainer.seed={seed}", f"--config.trainer.run_name=seed={seed}",
               "--config.trainer.validate_every=1", "--config.trainer.export_final=False"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow  # a minute: two trainer runs
def test_two_seeds_of_a_trainer_run_pool_into_one_row(tiny_checkpoint, hir_files, subprocess_env, tmp_path):
    arg = config_arg(tiny_checkpoint, hir_files, "hir")
    root = tmp_path / "sweep"
    for seed in (0, 1):
        train(root / f"seed={seed}", arg, seed, subprocess_env)
    output = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "herl_jax.report", str(root), "--output", str(output)],
                          cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((output / "report.json").read_text())
    (row,) = report["rows"]
    assert row["status"] == "finished (2 seeds)" and sorted(row["seeds"]) == [0, 1]
    finals = []
    for seed in (0, 1):
        lines = [json.loads(line) for line in (root / f"seed={seed}" / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in lines] == [1, 2]
        finals.append(lines[-1]["validation/reward_mean"])
    final = row["metrics"]["final_reward"]
    sd = float(np.std(np.asarray(finals, dtype=np.float64), ddof=1))
    np.testing.assert_allclose(final["mean"], np.mean(finals), rtol=1e-12)
    np.testing.assert_allclose(final["ci95_half_width"], T_TABLE[1] * sd / np.sqrt(2), rtol=1e-6, atol=1e-12)
    assert row["metrics"]["steps_done"]["mean"] == 2
    assert row["metrics"]["tokens_per_s"]["mean"] > 0
    assert [p["step"] for p in row["curves"]["validation/reward_mean"]] == [1, 2]
    assert [p["step"] for p in row["curves"]["train/entropy"]] == [1, 2]  # the trainer logs the update's entropy
    for name in ("learning_curves.png", "training_dynamics.png"):
        assert (output / name).read_bytes()[:8] == PNG_MAGIC
    assert "| all runs | finished (2 seeds) |" in (output / "report.md").read_text()


def test_the_baseline_cli_scores_the_validation_prompts_like_the_trainer(tiny_checkpoint, hir_files, subprocess_env,
                                                                        tmp_path):
    arg = config_arg(tiny_checkpoint, hir_files, "hir")
    done = subprocess.run([sys.executable, "-m", "herl_jax.reporting.baseline", "--config",
                           f"{REPO}/tests/trainer/tiny_config.py:{arg}", "--output", str(tmp_path)],
                          cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    validation_ids = [json.loads(line)["id"] for line in hir_files[1].read_text().splitlines()]
    assert [r["id"] for r in baseline["records"]] == validation_ids[:2]  # tiny_config: validation_prompts=2
    rewards = np.asarray([r["reward"] for r in baseline["records"]], dtype=np.float64)
    np.testing.assert_allclose(baseline["reward_mean"], rewards.mean(), rtol=1e-12)
    np.testing.assert_allclose(baseline["reward_se"], rewards.std(ddof=1) / np.sqrt(rewards.size),
                               rtol=1e-9, atol=1e-15)
    for record in baseline["records"]:  # Eq. 4 with unit weights: the share of items met
        met = [m for _, m in record["met"]]
        np.testing.assert_allclose(record["reward"], np.mean(met), rtol=1e-12)
