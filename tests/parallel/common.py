"""The tiny model, batch, optimizer and checks shared by the multi-device and multi-process scripts.

Nothing here starts JAX's backend at import, so a script can set XLA_FLAGS or join jax.distributed first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

# Every dimension a mesh axis might split is a multiple of 8, except the 2 kv heads (replicated on tensor=8
# or split on tensor=2) and the per-head q/k/v biases; Qwen2 brings the biases.
MODEL = dict(family="qwen2", vocab_size=64, hidden_size=32, intermediate_size=64, num_heads=4, num_kv_heads=2,
             head_dim=8, qkv_bias=True)
PROMPTS = [[5, 9, 3], [7, 1, 12, 30, 2], [4], [11, 22, 33, 44, 55, 6, 7]]
TOLERANCE = 1e-5


def tiny_model():
    from tests.training.tiny import tiny_model as make

    return make(seed=3, scale=0.1, **MODEL)


def train_batch():
    """16 collated rows (two of them revisions, two padding), W == T bucketed to 16."""
    from tests.training.tiny import random_batch

    return random_batch(seed=7, n=14, batch_size=16, revision_rows=(3, 10), vocab=MODEL["vocab_size"])


def step_config():
    from tests.training.tiny import LOSS
    from herl_jax.learner import LearnerConfig

    return LearnerConfig(LOSS, micro_batch_size=8, temperature=0.7, logprob_chunk_size=8)


def optimizer():
    """The trainer's AdamW. eps is large so one step's update is smooth in the gradient (with a tiny eps the
    first AdamW step is ~lr * sign(gradient), which flips on gradients that are zero up to rounding)."""
    from herl_jax.learner import OptimConfig, make_optimizer

    return make_optimizer(OptimConfig(lr=1e-2, eps=1e-3))


def one_train_step(learner, model, batch):
    """(old log-probs, new state, metrics) of one step from the model's parameters, reference = initial."""
    from tests.training.tiny import BUCKET

    state = learner.init_state(model)
    old = learner.compute_logprobs(state.params, batch, BUCKET)
    state, metrics = learner.optimizer_step(state, batch, old, old, bucket_size=BUCKET)
    return old, state, metrics


def max_difference(a, b) -> float:
    """Largest absolute difference between two pytrees of the same structure (inf if structures differ)."""
    import jax

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if jax.tree.structure(a) != jax.tree.structure(b):
        return float("inf")
    return max((float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) if np.size(x) else 0.0
                for x, y in zip(la, lb)), default=0.0)


def script_env(devices: int) -> dict[str, str]:
    """The environment of a check script: `devices` CPU devices, the repository importable.

    XLA's CPU backend optimizes less (compiles about twice as fast); every comparison a script makes is
    between two programs it compiled itself under the same flags. A collective's devices are threads of one
    process; on two loaded cores (the test suite's other worker, a run's other processes) one of them can
    reach a rendezvous long after the others, so XLA's 40 s give-up is raised to the scripts' own limit."""
    flags = [f"--xla_force_host_platform_device_count={devices}", "--xla_backend_optimization_level=0",
             "--xla_llvm_disable_expensive_passes=true", "--xla_cpu_collective_call_terminate_timeout_seconds=600",
             "--xla_cpu_collective_timeout_seconds=600"]
    return dict(os.environ, XLA_FLAGS=" ".join(flags), JAX_PLATFORMS="cpu",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def run_script(script: str, *args: str, devices: int, timeout: float) -> dict:
    """Runs tests/parallel/SCRIPT with `devices` CPU devices; returns the JSON object it prints last."""
    done = subprocess.run([sys.executable, str(REPO / "tests" / "parallel" / script), *args], env=script_env(devices),
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a jax.distributed coordinator)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_together(commands: list[tuple[list[str], int]], logs: Path, timeout: float) -> list[dict]:
    """Starts every (script argv, CPU devices) command at once (the processes of one jax.distributed run
    must all be up to start); returns the JSON object each prints last. Their output goes to
    LOGS/stdout_I.txt and LOGS/stderr_I.txt; any still running at the timeout is killed."""
    files, processes = [], []
    for i, (argv, devices) in enumerate(commands):
        out, err = open(logs / f"stdout_{i}.txt", "w"), open(logs / f"stderr_{i}.txt", "w")
        files += [out, err]
        processes.append(subprocess.Popen([sys.executable, *argv], env=script_env(devices), cwd=REPO,
                                          stdout=out, stderr=err))
    try:
        codes = [p.wait(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
        for f in files:
            f.close()
    for i, code in enumerate(codes):
        assert code == 0, f"command {i} failed:\n{(logs / f'stderr_{i}.txt').read_text()[-5000:]}"
    return [json.loads((logs / f"stdout_{i}.txt").read_text().strip().splitlines()[-1]) for i in range(len(codes))]
