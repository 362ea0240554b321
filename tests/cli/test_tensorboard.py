"""A finished run, trained by the real CLI with its data given as list overrides, is readable by the real
TensorBoard server: every finite scalar of metrics.jsonl comes back through TensorBoard's HTTP data API at
its step, and TensorBoard holds no tag that metrics.jsonl lacks."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.cli.helpers import REPO, run

TINY = "tests/trainer/tiny_config.py"
RUN_NAME = "train"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, route: str, **query) -> object:
    url = f"http://127.0.0.1:{port}{route}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _wait_for_tags(server: subprocess.Popen, port: int, expected: set[str], seconds: float) -> dict:
    """TensorBoard's tags of RUN_NAME once it has loaded all of `expected` (it reads the logdir in the
    background); fails when the server dies or the time runs out."""
    deadline = time.monotonic() + seconds
    tags: dict = {}
    while time.monotonic() < deadline:
        assert server.poll() is None, "tensorboard exited"
        try:
            tags = _get(port, "/data/plugin/scalars/tags").get(RUN_NAME, {})
        except OSError:  # not listening yet
            tags = {}
        if expected <= set(tags):
            return tags
        time.sleep(1)
    pytest.fail(f"tensorboard did not serve {sorted(expected - set(tags))} within {seconds} s")


@pytest.fixture
def finished_run(tmp_path, subprocess_env, tiny_checkpoint, hir_files):
    """The workdir of a 2-step tiny run whose data files reach the trainer only through list overrides."""
    workdir = tmp_path / "run"
    config = f"{TINY}:{tiny_checkpoint},/nonexistent/train.jsonl,/nonexistent/validation.jsonl,hir"
    done = run(["-m", "herl_jax.train", "--config", config, "--workdir", str(workdir),
                f"--config.data.train_files={hir_files[0]}", f"--config.data.validation_files={hir_files[1]}"],
               subprocess_env, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads((workdir / "config.json").read_text())["data"]
    assert (data["train_files"], data["validation_files"]) == ([str(hir_files[0])], [str(hir_files[1])])
    return workdir


def test_tensorboard_serves_the_runs_scalars(finished_run):
    logged: dict[str, dict[int, float]] = {}
    for line in (finished_run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        step = record.pop("step")
        for name, value in record.items():
            if math.isfinite(value):
                logged.setdefault(name, {})[step] = value
    assert len(logged.get("reward/mean", {})) == 2  # both steps logged

    port = _free_port()
    log = open(finished_run / "tensorboard.out", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(finished_run / "tensorboard"),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its data server too
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    try:
        tags = _wait_for_tags(server, port, set(logged), seconds=180)
        assert set(tags) == set(logged)
        for name, by_step in logged.items():
            points = _get(port, "/data/plugin/scalars/scalars", run=RUN_NAME, tag=name)  # [[wall, step, value]]
            served = {step: value for _, step, value in points}
            assert served.keys() == by_step.keys(), name
            for step, value in by_step.items():  # event files hold float32
                assert served[step] == pytest.approx(value, rel=1e-6, abs=1e-30), (name, step)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
