"""initialize_distributed: what it hands jax.distributed.initialize (recorded in-process), and two fake srun tasks
on 127.0.0.1 that JAX joins from SLURM's variables alone (tests/parallel/slurm_task.py)."""

import os
import subprocess
import sys

import jax
import pytest

from herl_jax import parallel
from tests.parallel.common import REPO, free_port, run_together, script_env

# One task per GPU on nodes of 8 GPUs (launch/multihost.sbatch): task 5 of 16.
STEP = dict(SLURM_JOB_ID="4123", SLURM_STEP_NODELIST="gpu[010-011]", SLURM_NTASKS="16", SLURM_PROCID="5",
            SLURM_LOCALID="5", SLURM_GPUS_ON_NODE="8", SLURM_NTASKS_PER_NODE="8")


@pytest.fixture
def calls(monkeypatch):
    """The keyword arguments of each jax.distributed.initialize call; SLURM's variables cleared."""
    for name in [n for n in os.environ if n.startswith("SLURM_")] + ["CUDA_VISIBLE_DEVICES"]:
        monkeypatch.delenv(name, raising=False)
    recorded = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: recorded.append(kwargs))
    return recorded


def test_a_single_process_joins_nothing(calls, monkeypatch):
    assert parallel.initialize_distributed() is False
    for name, value in dict(SLURM_PROCID="0", SLURM_STEP_NODELIST="n1", SLURM_NTASKS="1").items():
        monkeypatch.setenv(name, value)
    assert parallel.initialize_distributed() is False
    assert calls == []


def test_explicit_settings_go_to_jax_as_given_without_cluster_detection(calls, monkeypatch):
    for name, value in STEP.items():
        monkeypatch.setenv(name, value)  # ignored: the explicit settings win
    assert parallel.initialize_distributed("host0:1234", 2, 1) is True
    assert parallel.initialize_distributed("host0:1234", 2, 1, [0, 1]) is True
    assert calls == [dict(coordinator_address="host0:1234", num_processes=2, process_id=1, local_device_ids=ids,
                          cluster_detection_method="deactivate") for ids in (None, [0, 1])]
    with pytest.raises(ValueError, match="^give coordinator_address, num_processes and process_id together"):
        parallel.initialize_distributed("127.0.0.1:1234")


@pytest.mark.parametrize("variables, local_device_ids", [
    (dict(), None),  # one task per GPU, every GPU visible: JAX pins the task to the GPU at SLURM_LOCALID
    (dict(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="1", SLURM_PROCID="1", SLURM_LOCALID="0"), []),  # a node each
    (dict(SLURM_NTASKS_PER_NODE=None, SLURM_TASKS_PER_NODE="8(x2)"), None),  # the same step, SLURM's other spelling
    (dict(CUDA_VISIBLE_DEVICES="5"), []),  # SLURM already bound the task to its one GPU
])
def test_under_slurm_jax_reads_the_step_and_pins_a_gpu_only_for_one_task_per_gpu(calls, monkeypatch, variables,
                                                                                  local_device_ids):
    for name, value in dict(STEP, **variables).items():
        if value is not None:
            monkeypatch.setenv(name, value)
    assert parallel.initialize_distributed() is True
    assert calls == [dict(local_device_ids=local_device_ids, cluster_detection_method="slurm")]
    parallel.initialize_distributed(local_device_ids=[3])
    assert calls[-1] == dict(local_device_ids=[3], cluster_detection_method="slurm")


def test_two_srun_tasks_join_from_slurms_variables(tmp_path):
    port, script = str(free_port()), str(REPO / "tests" / "parallel" / "slurm_task.py")
    # Task 0 sees both GPUs (JAX pins it to GPU 0); SLURM bound task 1 to its GPU (it keeps what it sees).
    results = run_together([([script, port, "0"], 1), ([script, port, "1", "1"], 1)], tmp_path, timeout=120)
    assert results == [dict(joined=True, process=0, processes=2, gpus="0"),
                       dict(joined=True, process=1, processes=2, gpus="all")]


def test_a_step_jax_cannot_read_is_refused_in_one_line():
    env = dict(script_env(1), SLURM_JOB_ID="1", SLURM_NTASKS="2", SLURM_PROCID="0", SLURM_LOCALID="0")
    env.pop("SLURM_STEP_NODELIST", None)  # as in the batch script itself, outside srun
    done = subprocess.run([sys.executable, "-c", "from herl_jax import parallel; parallel.initialize_distributed()"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ValueError: SLURM_NTASKS=2, but jax.distributed cannot read the step ('SLURM_STEP_NODELIST'): start each "
        "task with srun, or give coordinator_address, num_processes and process_id")
