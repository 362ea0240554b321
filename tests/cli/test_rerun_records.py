"""Issue 13 item 9, through the real `train` on the tiny model: a rerun after a crash (kill -9 before the first
checkpoint) logs every step once, in metrics.jsonl and as TensorBoard shows it; a rerun whose config differs
from the checkpointed run's is refused in one line before anything loads, unless --allow_config_change, which
resumes with the new config and keeps the earlier config.json beside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.cli.helpers import PROGRESS, assert_one_line_error, run
from tests.trainer.conftest import REPO, config_arg
from tests.trainer.helpers import checkpoint_steps, purge_steps, read_metrics, tensorboard_scalars



def test_reruns_log_each_step_once_and_keep_the_config_they_resume(tmp_path, subprocess_env, tiny_checkpoint,
                                                                   hir_files):
    workdir = tmp_path / "run"
    train = [sys.executable, "-m", "herl_jax.train", "--config",
             f"tests/trainer/tiny_config.py:{config_arg(tiny_checkpoint, hir_files, 'hir')}", "--workdir",
             str(workdir), "--config.trainer.checkpoint_every=1000", "--config.trainer.validate_every=0"]

    # A crash after step 1 was logged, before any checkpoint.
    with open(tmp_path / "crash.txt", "w") as out:
        process = subprocess.Popen(train, cwd=REPO, env=subprocess_env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        deadline = time.monotonic() + 600
        while not read_metrics(workdir) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert [m["step"] for m in read_metrics(workdir)] == [1] and checkpoint_steps(workdir) == []

    rerun = run(train[1:], subprocess_env)  # starts again from step 0
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert [m["step"] for m in read_metrics(workdir)] == [1, 2]
    assert purge_steps(workdir / "tensorboard" / "train") == [1]  # TensorBoard hides the crashed attempt
    assert sorted(tensorboard_scalars(workdir / "tensorboard" / "train")["reward/mean"]) == [1, 2]
    recorded = (workdir / "config.json").read_text()

    changed = run([*train[1:], "--config.herl.alpha=0.1", "--config.trainer.steps=3"], subprocess_env)
    line = assert_one_line_error(changed, "herl.alpha", status=1, also=PROGRESS)
    assert "--allow_config_change" in line and "trainer.steps" not in line  # steps may change on resume
    assert "loaded the policy" not in changed.stderr
    assert (workdir / "config.json").read_text() == recorded and checkpoint_steps(workdir) == [2]

    allowed = run([*train[1:], "--config.herl.alpha=0.1", "--config.trainer.steps=3", "--allow_config_change"],
                  subprocess_env)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "resumed from checkpoint 2" in allowed.stderr
    assert "config differs from the checkpointed run's in herl.alpha" in allowed.stderr
    assert (workdir / "config.previous-1.json").read_text() == recorded
    new = json.loads((workdir / "config.json").read_text())
    assert new["herl"]["alpha"] == 0.1 and new["trainer"]["steps"] == 3
    assert [m["step"] for m in read_metrics(workdir)] == [1, 2, 3]
