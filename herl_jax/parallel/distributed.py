"""Joining several processes (hosts, or one process per GPU) into one JAX runtime with jax.distributed.

`initialize_distributed()` must run before any other JAX call (importing jax is not a call). Settings
come from explicit arguments, or from SLURM's variables when the process was started by `srun`:

  SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST)  coordinator: the first node
  SLURM_JOB_ID                                 coordinator port: COORDINATOR_PORT_BASE + job id % 4000
  SLURM_NTASKS                                 number of processes
  SLURM_PROCID                                 this process's index
  SLURM_LOCALID                                with one task per GPU (SLURM_GPUS_ON_NODE equal to the tasks
                                               per node, every GPU visible): the GPU this process drives
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Mapping, Sequence

COORDINATOR_PORT_BASE = 61000  # + SLURM_JOB_ID % 4000: jobs sharing a node pick different ports


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
    coordinator_address: str  # HOST:PORT of process 0
    num_processes: int
    process_id: int
    local_device_ids: tuple[int, ...] | None = None  # None: every local device


def slurm_settings(env: Mapping[str, str] | None = None) -> DistributedSettings | None:
    """Settings read from SLURM's variables, or None outside a SLURM step (no SLURM_PROCID)."""
    env = os.environ if env is None else env
    if "SLURM_PROCID" not in env:
        return None
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
    if not nodes:
        raise ValueError("SLURM_PROCID is set but neither SLURM_STEP_NODELIST nor SLURM_JOB_NODELIST is")
    port = COORDINATOR_PORT_BASE + int(env.get("SLURM_JOB_ID", 0)) % 4000
    num_processes = int(env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS") or 1)
    gpus, tasks = env.get("SLURM_GPUS_ON_NODE"), _tasks_per_node(env)
    one_gpu_each = gpus is not None and tasks is not None and int(gpus) == tasks > 1
    all_visible = "," in env.get("CUDA_VISIBLE_DEVICES", ",")  # one visible GPU: SLURM bound it already
    local_ids = (int(env["SLURM_LOCALID"]),) if one_gpu_each and all_visible and "SLURM_LOCALID" in env else None
    return DistributedSettings(f"{first_host(nodes)}:{port}", num_processes, int(env["SLURM_PROCID"]), local_ids)


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: "gpu[003-005,9],cpu1" -> "gpu003"."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise ValueError(f"cannot read the SLURM node list {nodelist!r}")
    prefix, ranges = match.groups()
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _tasks_per_node(env: Mapping[str, str]) -> int | None:
    """SLURM_NTASKS_PER_NODE, or this node's count from SLURM_TASKS_PER_NODE ("8(x2)" or "8,8")."""
    value = env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    if not value:
        return None
    return int(re.match(r"\d+", value).group())


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, local_device_ids: Sequence[int] | None = None,
                           env: Mapping[str, str] | None = None) -> DistributedSettings | None:
    """jax.distributed.initialize with explicit settings (all three of coordinator_address, num_processes,
    process_id), else SLURM's; returns the settings used, or None when there is a single process (no
    SLURM step, or a step of one task): nothing to join."""
    explicit = (coordinator_address, num_processes, process_id)
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ValueError("give coordinator_address, num_processes and process_id together (or none: SLURM)")
        settings = DistributedSettings(coordinator_address, num_processes, process_id,
                                       None if local_device_ids is None else tuple(local_device_ids))
    else:
        settings = slurm_settings(env)
        if settings is None or settings.num_processes == 1:
            return None
        if local_device_ids is not None:
            settings = dataclasses.replace(settings, local_device_ids=tuple(local_device_ids))
    import jax

    jax.distributed.initialize(coordinator_address=settings.coordinator_address,
                               num_processes=settings.num_processes, process_id=settings.process_id,
                               local_device_ids=settings.local_device_ids)
    return settings
