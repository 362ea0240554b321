"""SIGTERM (issue 6 item 4): the CLI finishes the current step, saves it, exits with status 0; the next run
resumes from that checkpoint."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from herl_jax.training.trainer import Trainer
from tests.trainer.conftest import REPO, config_arg
from tests.trainer.helpers import LogRecorder, checkpoint_steps, read_metrics
from tests.trainer.tiny_config import get_config

STARTUP_LIMIT_S = 600  # imports, tokenizer, data and the first step's compile on a loaded 2-core CI box
EXIT_LIMIT_S = 300  # the step in flight, then the save


@pytest.mark.slow  # tests/cli/test_stop_signals.py covers the same stop, sent to the group
def test_sigterm_saves_the_current_step_and_the_rerun_resumes(tiny_checkpoint, hir_files, subprocess_env,
                                                              tmp_path):
    arg = config_arg(tiny_checkpoint, hir_files, "hir")
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "herl_jax.train", "--config", f"{REPO}/tests/trainer/tiny_config.py:{arg}",
               "--workdir", str(workdir), "--config.trainer.steps=1000", "--config.trainer.checkpoint_every=1000",
               "--config.trainer.validate_every=0"]
    log_path = tmp_path / "cli.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, cwd=REPO, env=subprocess_env, stdout=log_file,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_LIMIT_S
            while not read_metrics(workdir) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            assert process.poll() is None, f"the run ended early:\n{log_path.read_text()[-3000:]}"
            assert read_metrics(workdir), "no step logged in time"
            assert checkpoint_steps(workdir) == []  # checkpoint_every=1000: only the signal will save
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=EXIT_LIMIT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log_path.read_text()
    assert returncode == 0, output[-3000:]
    assert "received signal 15" in output and "stop requested: saving step" in output

    last = read_metrics(workdir)[-1]["step"]
    assert [m["step"] for m in read_metrics(workdir)] == list(range(1, last + 1))
    assert checkpoint_steps(workdir) == [last]  # the step it was on when told to stop
    assert not (workdir / "export").exists()  # stopped early: no final export

    c = get_config(arg)
    c.trainer.update(steps=last + 1, checkpoint_every=1000, validate_every=0)
    with LogRecorder() as logs:
        trainer = Trainer(c, workdir)
        assert trainer.step == last
        assert trainer.run() == last + 1
    assert f"resumed from checkpoint {last}" in logs.text
    assert [m["step"] for m in read_metrics(workdir)] == list(range(1, last + 2))
    assert checkpoint_steps(workdir) == [last, last + 1]
    assert (workdir / "export" / "model.safetensors").exists()
