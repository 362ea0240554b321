"""Issue 13 item 3: SIGTERM (SLURM's scancel, pre-emption, time limit) or SIGINT (Ctrl-C) delivered to the
whole process group of `train`, or of `launch/sweep.py` and its current run, once or twice (the second while
the first is being handled), leaves a saved checkpoint and exit status 0, and the rerun ends exactly where an
uninterrupted run does: the same metrics, bit-identical exported weights.

Each command runs in a new session (its own process group, with its checker processes), signalled with
os.killpg as a terminal or SLURM signals it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.conftest import REPO, config_arg
from tests.trainer.helpers import checkpoint_steps, read_metrics

STEPS = 4
# The same run every time: checkpoints only when a signal asks (or at the end), no validation.
RUN_FLAGS = (f"--config.trainer.steps={STEPS}", "--config.trainer.checkpoint_every=1000",
             "--config.trainer.validate_every=0")
COMPARED = ("reward/mean", "reward/max", "revision/rate", "samples/generated_tokens", "train/loss",
            "train/grad_norm", "train/kl")
START_LIMIT_S = 600  # imports, tokenizer, data and the first step's compile on a loaded 2-core box
EXIT_LIMIT_S = 300


def train_command(config: str, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "herl_jax.train", "--config", config, "--workdir", str(workdir), *RUN_FLAGS]


def sweep_command(config: str, root: Path) -> list[str]:
    return [sys.executable, "launch/sweep.py", "--config", config, "--root", str(root), "--grid", "herl.alpha=0.05",
            "--", *RUN_FLAGS]


def run_to_end(command: list[str], env: dict, log: Path, workdir: Path | None = None,
               signals: tuple[int, ...] = ()) -> int:
    """Runs `command` in its own process group; with `signals`, once WORKDIR/metrics.jsonl has a line, sends
    the first to the whole group, and each next one once the trainer has logged that it received the last."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            for count, signum in enumerate(signals):
                _wait_for(lambda: read_metrics(workdir) if count == 0 else log.read_text().count("received signal")
                          >= count, process, log)
                os.killpg(process.pid, signum)
            return process.wait(timeout=EXIT_LIMIT_S + START_LIMIT_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for(condition, process, log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while not condition():
        assert process.poll() is None, f"ended before the signal:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def exported_weights(workdir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(workdir / "export" / "model.safetensors")


@pytest.fixture(scope="module")
def config(tiny_checkpoint, hir_files) -> str:
    return f"tests/trainer/tiny_config.py:{config_arg(tiny_checkpoint, hir_files, 'hir')}"


@pytest.fixture(scope="module")
def uninterrupted(config, subprocess_env, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted") / "run"
    log = workdir.parent / "log.txt"
    assert run_to_end(train_command(config, workdir), subprocess_env, log) == 0, log.read_text()[-3000:]
    return workdir


def assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    lines, expected = read_metrics(resumed), read_metrics(uninterrupted)
    assert [m["step"] for m in lines] == [m["step"] for m in expected] == list(range(1, STEPS + 1))
    for got, want in zip(lines, expected):
        for key in COMPARED:
            assert got[key] == want[key], (got["step"], key)
    got, want = exported_weights(resumed), exported_weights(uninterrupted)
    assert sorted(got) == sorted(want)
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    assert (resumed / "FINISHED").read_text().strip() == str(STEPS)


def assert_stopped_and_saved(workdir: Path, output: str, signals: tuple[int, ...]) -> int:
    """The step the signalled run stopped after, checkpointed and logged once."""
    assert f"received signal {signals[0]}: stopping after the current step" in output
    if len(signals) > 1:
        assert f"received signal {signals[1]} again" in output
    steps = [m["step"] for m in read_metrics(workdir)]
    assert steps == list(range(1, len(steps) + 1)) and 0 < steps[-1] < STEPS
    assert f"stop requested: saving step {steps[-1]} and exiting" in output  # numbered as metrics.jsonl
    assert checkpoint_steps(workdir) == [steps[-1]]
    assert not (workdir / "FINISHED").exists() and not (workdir / "export").exists()
    return steps[-1]


# SIGINT twice is slow-marked: SIGINT reaches the same handler, and a second signal during
# the stop is covered by the sweep test below.
SIGNALS = pytest.mark.parametrize("signals", [(signal.SIGTERM,),
                                              pytest.param((signal.SIGINT, signal.SIGINT), marks=pytest.mark.slow)],
                                  ids=["sigterm-once", "sigint-twice"])


@SIGNALS
def test_train_stops_saves_and_resumes_exactly(config, subprocess_env, uninterrupted, tmp_path, signals):
    workdir, log = tmp_path / "run", tmp_path / "log.txt"
    status = run_to_end(train_command(config, workdir), subprocess_env, log, workdir, signals)
    output = log.read_text()
    assert status == 0, output[-3000:]
    assert "Traceback" not in output
    stopped = assert_stopped_and_saved(workdir, output, signals)

    assert run_to_end(train_command(config, workdir), subprocess_env, log) == 0, log.read_text()[-3000:]
    assert f"resumed from checkpoint {stopped}" in log.read_text()
    assert_same_run(workdir, uninterrupted)


def test_sweep_stops_its_current_run_saves_and_continues(config, subprocess_env, uninterrupted, tmp_path):
    root, log = tmp_path / "sweep", tmp_path / "log.txt"
    workdir = root / "alpha=0.05"  # herl.alpha=0.05 is the tiny config's own value: the same run as above
    signals = (signal.SIGTERM, signal.SIGTERM)
    status = run_to_end(sweep_command(config, root), subprocess_env, log, workdir, signals)
    output = log.read_text()
    assert status == 0, output[-3000:]
    assert "Traceback" not in output and "interrupted (saved; rerun to continue)" in output
    stopped = assert_stopped_and_saved(workdir, output, signals)

    assert run_to_end(sweep_command(config, root), subprocess_env, log) == 0, log.read_text()[-3000:]
    assert f"resumed from checkpoint {stopped}" in log.read_text()
    assert_same_run(workdir, uninterrupted)


# Loaded by the trainer's Python at start-up (sitecustomize on its PYTHONPATH): holds the import of the
# trainer module until the test has sent its signal, so "while importing" is not a race with the import.
HOLD_THE_TRAINER_IMPORT = """
import importlib.abc, os, sys, time

class _Hold(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "herl_jax.training.trainer":
            while not os.path.exists(os.environ["HERL_TEST_RELEASE"]):
                time.sleep(0.05)
        return None

sys.meta_path.insert(0, _Hold())
"""


@pytest.mark.parametrize("moment", ["importing", "building"], ids=["while-importing", "while-building"])
def test_a_stop_during_start_up_exits_0_with_nothing_half_written(config, subprocess_env, tmp_path, moment):
    """`scancel` seconds after the job started: while the trainer's modules import (JAX, Flax, orbax; the
    import is held until the signal is sent), or while the trainer loads the data and the weights (its
    handler is in place, no step has run)."""
    workdir, log, release = tmp_path / "run", tmp_path / "log.txt", tmp_path / "release"
    train_log = workdir / "train.log"
    env = dict(subprocess_env)
    if moment == "importing":
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(HOLD_THE_TRAINER_IMPORT)
        env.update(PYTHONPATH=os.pathsep.join([str(hook), env["PYTHONPATH"]]), HERL_TEST_RELEASE=str(release))
        reached = train_log.exists  # written just before the trainer's import
    else:
        reached = lambda: train_log.exists() and " data: " in train_log.read_text()  # noqa: E731
    with open(log, "w") as out:
        process = subprocess.Popen(train_command(config, workdir), cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for(reached, process, log)
            os.killpg(process.pid, signal.SIGTERM)
            release.touch()
            status = process.wait(timeout=EXIT_LIMIT_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = log.read_text()
    assert status == 0, output[-3000:]
    assert "Traceback" not in output
    expected = ("during start-up: exiting before loading anything" if moment == "importing"
                else "stop requested before the first step: nothing to save")
    assert expected in output, output[-3000:]
    assert checkpoint_steps(workdir) == [] and not read_metrics(workdir)
    assert not (workdir / "FINISHED").exists() and not (workdir / "export").exists()
