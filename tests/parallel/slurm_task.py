"""One task of a two-task SLURM step on one node with 2 GPUs, as srun starts it, on 127.0.0.1 (CPU only).

  slurm_task.py PORT PROCID [CUDA_VISIBLE_DEVICES]      (run by test_distributed.py, both tasks at once)

Sets the variables srun sets, then joins with initialize_distributed() and no arguments: JAX reads the step.
Prints one JSON object: whether it joined, its process index and count, and the GPUs JAX was told it drives.
"""

from __future__ import annotations

import json
import os
import sys

port, procid, *visible = sys.argv[1:]
os.environ.update(SLURM_JOB_ID="4123", SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2", SLURM_PROCID=procid,
                  SLURM_LOCALID=procid, SLURM_NTASKS_PER_NODE="2", SLURM_GPUS_ON_NODE="2",
                  JAX_COORDINATOR_PORT=port)
os.environ.pop("CUDA_VISIBLE_DEVICES", None)
if visible:
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[0]

from herl_jax import parallel  # noqa: E402

joined = parallel.initialize_distributed()

import jax  # noqa: E402

print(json.dumps(dict(joined=joined, process=jax.process_index(), processes=jax.process_count(),
                      gpus=jax.config.read("jax_cuda_visible_devices"))))
jax.distributed.shutdown()
