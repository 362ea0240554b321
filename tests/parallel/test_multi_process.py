"""Two processes on 127.0.0.1 joined by jax.distributed (CPU collectives), 2 CPU devices each, run one HeRL
train step with the parameters split across them (tests/parallel/multi_process.py): both end with the same
parameters, equal to the single-device step; the greedy sampler, an orbax checkpoint round trip and the HF
export (gathered from both, written by process 0) work there too, and host values pass between the
processes."""

import numpy as np
import pytest
from flax import nnx

from herl_jax.models import load_model
from tests.parallel.common import REPO, TOLERANCE, free_port, max_difference, run_together, tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(the two processes' JSON results, their output directory)."""
    out = tmp_path_factory.mktemp("multi_process")
    port, script = str(free_port()), str(REPO / "tests" / "parallel" / "multi_process.py")
    return run_together([([script, port, str(i), str(out)], 2) for i in (0, 1)], out, timeout=300), out


def test_one_step_across_two_processes_matches_one_device(run):
    results, _ = run
    for r in results:
        assert r["params_sharded"]  # each process holds only part of the parameters
        assert r["moved"] > 1e-3
        for key in ("old_logprobs", "params", "opt_state", "metrics"):
            assert r[key] <= TOLERANCE, key
        assert r["tokens_equal"]
        assert r["checkpoint"] == 0.0


def test_host_values_are_exchanged_between_processes(run):
    results, _ = run
    assert all(r["gathered_objects"] for r in results)  # both values, in process order, on both processes
    assert [r["my_share"] for r in results] == [[0, 2, 4, 6], [1, 3, 5]]


def test_each_piece_joins_both_processes_pieces_in_process_order(run):
    """Process 0 cuts its 5 items and process 1 its 2 into 3 pieces each (process 1's middle piece is empty):
    both see the same joined batches, each with its own rows' place in them and in its own list."""
    results, _ = run
    batches = [["a0", "a1", "b0"], ["a2"], ["a3", "a4", "b1"]]
    assert results[0]["joint_pieces"] == [[batches[0], 0, 2, 0], [batches[1], 0, 1, 2], [batches[2], 0, 2, 3]]
    assert results[1]["joint_pieces"] == [[batches[0], 2, 3, 0], [batches[1], 1, 1, 1], [batches[2], 2, 3, 1]]


def test_both_processes_end_with_identical_parameters(run):
    _, out = run
    first, second = np.load(out / "params_0.npz"), np.load(out / "params_1.npz")
    assert sorted(first) == sorted(second) and len(first) > 0
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_export_gathers_the_sharded_parameters(run):
    _, out = run
    exported = nnx.state(load_model(out / "export"), nnx.Param)
    assert max_difference(exported, nnx.state(tiny_model(), nnx.Param)) == 0.0
