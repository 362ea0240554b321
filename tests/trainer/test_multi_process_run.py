"""The data stream split per process (issue 8 item 2): two processes joined over 127.0.0.1, 2 CPU devices
each, train the tiny config for 2 steps. Each takes its own half of every batch and scores only its own
rows, yet both end with identical parameters and the same logged metrics as one process with all 4
devices doing all the work (tests/trainer/process_run.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parallel.common import TOLERANCE, free_port, max_difference, run_together
from tests.trainer.conftest import REPO, config_arg
from tests.trainer.helpers import read_metrics

pytestmark = pytest.mark.slow  # minutes long: HERL_SLOW_TESTS=0 skips it (tests/conftest.py)

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
    port, script = str(free_port()), str(SCRIPT)
    alone, *pair = run_together([([script, "0", "1", "0", str(one), arg], 4),
                                 ([script, port, "2", "0", str(two), arg], 2),
                                 ([script, port, "2", "1", str(two), arg], 2)], two, timeout=600)
    return {"one": (alone, one), "two": (pair, two)}


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
