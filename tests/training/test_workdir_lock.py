"""The workdir lock against real processes: a live holder is refused by name, a dead one's lock is taken
over with a warning, another host's lock is refused, and of several runs started at once exactly one runs."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from herl_jax import workdir_lock
from herl_jax.workdir_lock import LOCK_NAME, WorkdirLockError, WorkdirLock
from tests.training.tmpfs import mounted_tmpfs

# The module is loaded from its file (standard library only), so a holder process starts in a fraction of a second.
HOLDER = textwrap.dedent("""
    import importlib.util, os, sys, time
    spec = importlib.util.spec_from_file_location("workdir_lock", {module!r})
    workdir_lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(workdir_lock)
    try:
        lock = workdir_lock.WorkdirLock(sys.argv[1]).acquire()
    except workdir_lock.WorkdirLockError as e:
        print("REFUSED", e, flush=True)
        sys.exit(3)
    print("HELD", os.getpid(), flush=True)
    time.sleep(float(sys.argv[2]))
""").format(module=workdir_lock.__file__)


def _holder(workdir: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir), str(seconds)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_run_is_refused_naming_the_live_holder(tmp_path):
    holder = _holder(tmp_path, 600)
    try:
        assert holder.stdout.readline().split() == ["HELD", str(holder.pid)]
        with pytest.raises(WorkdirLockError) as refused:
            WorkdirLock(tmp_path).acquire()
        message = str(refused.value)
        assert "\n" not in message and str(tmp_path) in message
        assert f"pid {holder.pid} on host {socket.gethostname()} (started 20" in message
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # left as it was
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_warning(tmp_path, caplog):
    holder = _holder(tmp_path, 600)
    assert holder.stdout.readline().startswith("HELD")
    holder.send_signal(signal.SIGKILL)  # no chance to clean up: the lock file stays
    holder.wait()
    assert (tmp_path / LOCK_NAME).exists()
    caplog.set_level(logging.WARNING)
    with WorkdirLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert any(f"pid {holder.pid}" in r.getMessage() and "no longer running" in r.getMessage()
                   for r in caplog.records)
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_run_that_exits_removes_its_lock(tmp_path):
    holder = _holder(tmp_path, 0)
    assert holder.stdout.readline().startswith("HELD")
    assert holder.wait(timeout=60) == 0
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_refused_naming_that_host(tmp_path):
    record = {"host": "gpu-node-17.cluster.example", "pid": 4242, "started": "2026-01-02 03:04:05 +0000"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(record))
    with pytest.raises(WorkdirLockError, match=r"pid 4242 on host gpu-node-17\.cluster\.example .*delete"):
        WorkdirLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == record


def test_of_runs_started_together_exactly_one_holds_the_workdir(tmp_path):
    runs = [_holder(tmp_path, 3) for _ in range(3)]
    outcomes = [run.stdout.readline().split()[0] for run in runs]
    codes = [run.wait(timeout=60) for run in runs]
    assert sorted(outcomes) == ["HELD", "REFUSED", "REFUSED"]
    assert sorted(codes) == [0, 3, 3]


def test_a_read_only_workdir_is_one_clear_line(tmp_path):
    with mounted_tmpfs(tmp_path / "ro", "1m", read_only=True) as workdir:
        with pytest.raises(WorkdirLockError, match=r"cannot create the lock file .*herl\.lock: Read-only file system$"):
            WorkdirLock(workdir).acquire()
