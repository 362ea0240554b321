"""SLOW (three 2-process runs, about 5 minutes on 2 cores). Issue 13 item 3 for a multi-process run: the two
processes of one `launch/multihost.py` run (joined over 127.0.0.1, one CPU device each) share one process
group, as srun's tasks do; SIGTERM to the group while step 1 runs makes both stop after the same step (they
agree on it), save it, and exit 0; the rerun finishes with the metrics and bit-identical exported weights of
an uninterrupted 2-process run. Kept to 2 steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import PROGRESS
from tests.parallel.common import free_port
from tests.trainer.conftest import REPO, config_arg
from tests.trainer.helpers import checkpoint_steps, read_metrics

pytestmark = pytest.mark.slow  # minutes long: HERL_SLOW_TESTS=0 skips it (tests/conftest.py)

STEPS = 2
FLAGS = (f"--config.trainer.steps={STEPS}", "--config.trainer.checkpoint_every=1000",
         "--config.trainer.validate_every=0")
COMPARED = ("reward/mean", "revision/rate", "samples/generated_tokens", "train/loss", "train/grad_norm")
LIMIT_S = 900


def start_pair(config: str, workdir: Path, env: dict, logs: Path) -> list[subprocess.Popen]:
    """Both processes of one run, in one new process group led by process 0 (in this session: a group can
    only take members from its own session)."""
    port, processes = free_port(), []
    for process_id in (0, 1):
        command = [sys.executable, "launch/multihost.py", "--coordinator-address", f"127.0.0.1:{port}",
                   "--num-processes", "2", "--process-id", str(process_id), "--config", config,
                   "--workdir", str(workdir), *FLAGS]
        group = processes[0].pid if processes else 0
        with open(logs / f"process_{process_id}.txt", "w") as out:
            processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                              process_group=group))
    return processes


def wait_all(processes: list[subprocess.Popen], logs: Path) -> None:
    try:
        codes = [p.wait(timeout=LIMIT_S) for p in processes]
    finally:
        if any(p.poll() is None for p in processes):
            os.killpg(processes[0].pid, signal.SIGKILL)
    for i, code in enumerate(codes):
        assert code == 0, f"process {i}:\n{(logs / f'process_{i}.txt').read_text()[-3000:]}"


def run_pair(config, workdir, env, logs, signal_when_training: bool = False) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    processes = start_pair(config, workdir, env, logs)
    if signal_when_training:  # the progress bar appears as the loop starts: step 1 is under way
        deadline = time.monotonic() + LIMIT_S
        while not any(PROGRESS.match(line) for line in (logs / "process_0.txt").read_text().splitlines()):
            assert all(p.poll() is None for p in processes) and time.monotonic() < deadline, \
                (logs / "process_0.txt").read_text()[-3000:]
            time.sleep(0.2)
        os.killpg(processes[0].pid, signal.SIGTERM)
    wait_all(processes, logs)


@pytest.fixture(scope="module")
def config(tiny_checkpoint, hir_files) -> str:
    return f"tests/trainer/tiny_config.py:{config_arg(tiny_checkpoint, hir_files, 'hir')}"


def test_sigterm_to_a_two_process_run_saves_and_resumes_exactly(config, subprocess_env, tmp_path):
    uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    run_pair(config, uninterrupted, subprocess_env, tmp_path / "logs_uninterrupted")

    run_pair(config, resumed, subprocess_env, tmp_path / "logs_signalled", signal_when_training=True)
    outputs = [(tmp_path / "logs_signalled" / f"process_{i}.txt").read_text() for i in (0, 1)]
    assert all("received signal 15" in text for text in outputs)
    assert all("stop requested: saving step 1 and exiting" in text for text in outputs)  # the same step
    assert checkpoint_steps(resumed) == [1] and [m["step"] for m in read_metrics(resumed)] == [1]
    assert not (resumed / "FINISHED").exists()

    run_pair(config, resumed, subprocess_env, tmp_path / "logs_rerun")
    assert "resumed from checkpoint 1" in (tmp_path / "logs_rerun" / "process_0.txt").read_text()
    lines, expected = read_metrics(resumed), read_metrics(uninterrupted)
    assert [m["step"] for m in lines] == [m["step"] for m in expected] == [1, 2]
    for got, want in zip(lines, expected):
        for key in COMPARED:
            assert got[key] == want[key], (got["step"], key)
    from safetensors.numpy import load_file

    got, want = (load_file(w / "export" / "model.safetensors") for w in (resumed, uninterrupted))
    assert sorted(got) == sorted(want)
    for name in want:
        assert np.array_equal(got[name], want[name]), name
