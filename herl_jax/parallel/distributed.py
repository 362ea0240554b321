"""Joining several processes (hosts, or one process per GPU) into one JAX runtime with jax.distributed.

`initialize_distributed()` must run before any other JAX call (importing jax is not a call). Under `srun`,
jax.distributed.initialize() reads the SLURM step itself: coordinator the step's first node (port 61440 +
SLURM_JOB_ID % 4096, or JAX_COORDINATOR_PORT), SLURM_NTASKS processes, this one SLURM_PROCID. This module
adds what JAX lacks:
- a single process (no SLURM step, or a step of one task) joins nothing, where JAX would raise;
- JAX pins every SLURM task to the GPU at SLURM_LOCALID. That is right with one task per GPU
  (SLURM_GPUS_ON_NODE equal to the tasks per node) and every GPU visible; otherwise (one task driving a
  node's GPUs, or SLURM already bound the task to its GPU) the task gets every GPU it sees.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import jax


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, local_device_ids: Sequence[int] | None = None) -> bool:
    """jax.distributed.initialize with explicit settings (all three of coordinator_address, num_processes,
    process_id; no cluster detection), else with JAX's reading of the SLURM step; `local_device_ids` None: see
    the module docstring. Returns whether it joined: False for a single process."""
    explicit = (coordinator_address, num_processes, process_id)
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ValueError("give coordinator_address, num_processes and process_id together (or none: SLURM)")
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id, local_device_ids=local_device_ids,
                                   cluster_detection_method="deactivate")
        return True
    tasks = int(os.environ.get("SLURM_NTASKS") or 1)
    if "SLURM_PROCID" not in os.environ or tasks == 1:
        return False
    if local_device_ids is None and not _one_gpu_per_task():
        local_device_ids = []  # every visible device: an empty list stops JAX pinning SLURM_LOCALID
    try:
        jax.distributed.initialize(local_device_ids=local_device_ids, cluster_detection_method="slurm")
    except (KeyError, ValueError) as e:  # KeyError: a variable JAX reads is missing
        raise ValueError(f"SLURM_NTASKS={tasks}, but jax.distributed cannot read the step ({e}): start each task "
                         "with srun, or give coordinator_address, num_processes and process_id") from None
    return True


def _one_gpu_per_task() -> bool:
    """Whether this SLURM task drives one GPU of several it sees: the one JAX pins (SLURM_LOCALID)."""
    tasks = os.environ.get("SLURM_NTASKS_PER_NODE") or os.environ.get("SLURM_TASKS_PER_NODE")  # "8", "8(x2)"
    gpus = os.environ.get("SLURM_GPUS_ON_NODE")
    all_visible = "," in os.environ.get("CUDA_VISIBLE_DEVICES", ",")  # one visible GPU: SLURM bound it already
    return bool(tasks and gpus) and int(gpus) == int(re.match(r"\d+", tasks).group()) > 1 and all_visible
