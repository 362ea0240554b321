"""The data stream split per process (issue 8 item 2): two processes joined over 127.0.0.1, 2 CPU devices
each, train the tiny config for 2 steps. Each takes its own half of every batch and scores only its own
rows, yet both end with identical parameters and the same logged metrics as one process with all 4
devices doing all the work (tests/trainer/process_run.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.parallel.common import TOLERANCE, max_difference, script_env
from tests.parallel.test_multi_process import free_port
from tests.trainer.conftest import REPO, config_arg
from tests.trainer.helpers import read_metrics

SCRIPT = REPO / "tests" / "trainer" / "process_run.py"
# Logged per step: what the groups were made of, and what the update did with them.
COMPARED = ("reward/mean", "reward/max", "revision/rate", "revision/gain", "revision/bonus", "groups/zero_variance",
            "groups/skipped", "samples/dropped", "samples/generated_tokens", "train/loss", "train/kl",
            "train/grad_norm", "validation/reward_mean", "validation/dropped")


@pytest.fixture(scope="module")
def runs(tiny_checkpoint, hir_files, tmp_path_factory):
    """{"one": (result, workdir), "two": ([result of process 0, of process 1], workdir)}."""
    arg = config_arg(tiny_checkpoint, hir_files, "hir")
    one, two = tmp_path_factory.mktemp("one_process"), tmp_path_factory.mktemp("two_processes")
    port = str(free_port())
    commands = [(one, ["0", "1", "0", str(one)], 4), (two, [port, "2", "0", str(two)], 2),
                (two, [port, "2", "1", str(two)], 2)]
    logs, processes = [], []
    for i, (workdir, args, devices) in enumerate(commands):
        out, err = open(workdir / f"stdout_{i}.txt", "w"), open(workdir / f"stderr_{i}.txt", "w")
        logs += [out, err]
        processes.append(subprocess.Popen([sys.executable, str(SCRIPT), *args, arg], env=script_env(devices),
                                          cwd=REPO, stdout=out, stderr=err))
    try:
        codes = [p.wait(timeout=600) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
        for f in logs:
            f.close()
    results = []
    for i, ((workdir, _, _), code) in enumerate(zip(commands, codes)):
        assert code == 0, f"run {i} failed:\n{(workdir / f'stderr_{i}.txt').read_text()[-5000:]}"
        results.append(json.loads((workdir / f"stdout_{i}.txt").read_text().strip().splitlines()[-1]))
    return {"one": (results[0], one), "two": (results[1:], two)}


def test_each_process_takes_its_own_half_of_every_batch(runs):
    (alone, _), (pair, _) = runs["one"], runs["two"]
    assert alone["devices"] == 4 and [p["devices"] for p in pair] == [4, 4]
    for step, prompts in enumerate(alone["prompts"]):
        first, second = pair[0]["prompts"][step], pair[1]["prompts"][step]
        assert len(first) == len(second) == 2
        assert first + second == prompts  # process 0 the first half, process 1 the second


def test_each_process_scores_only_its_own_rows(runs):
    (alone, _), (pair, _) = runs["one"], runs["two"]
    assert all(p["scored"] > 0 for p in pair)
    assert sum(p["scored"] for p in pair) == alone["scored"]  # rollouts, revisions and validation, once each


def test_both_processes_end_where_one_process_does(runs):
    (_, one), (_, two) = runs["one"], runs["two"]
    first, second, alone = (np.load(two / "params_0.npz"), np.load(two / "params_1.npz"),
                            np.load(one / "params_0.npz"))
    assert sorted(first) == sorted(second) == sorted(alone) and len(alone) > 0
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert max_difference(dict(first), dict(alone)) <= TOLERANCE


def test_the_pair_logs_what_one_process_logs(runs):
    (_, one), (_, two) = runs["one"], runs["two"]
    alone, pair = read_metrics(one), read_metrics(two)
    assert [m["step"] for m in pair] == [m["step"] for m in alone] == [1, 2]
    assert any(m["revision/rate"] > 0 for m in alone)  # the hindsight path ran
    for a, p in zip(alone, pair):
        for key in COMPARED:
            if key in a:
                assert p[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)
