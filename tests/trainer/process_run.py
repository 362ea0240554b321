"""A run of the tiny trainer config as one process of a multi-process run, or alone.

  process_run.py PORT PROCESSES PROCESS_ID WORKDIR CONFIG_ARG      (run by test_multi_process_run.py)

With PROCESSES > 1 the process first joins the others over 127.0.0.1 with jax.distributed. Writes this
process's final parameters to WORKDIR/params_PROCESS_ID.npz and prints one JSON object: how many responses
its own scorer scored (rollouts, revisions and validation), and the prompts of the examples its data iterator
gave it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

from herl_jax import parallel
from herl_jax.training.trainer import Trainer
from tests.trainer.tiny_config import get_config


class RecordingIterator:
    """The trainer's batch iterator, noting which examples it hands out."""

    def __init__(self, batches):
        self.batches, self.prompts = batches, []

    def __next__(self):
        examples = next(self.batches)
        self.prompts.append([e.prompt for e in examples])
        return examples

    def __getattr__(self, name):
        return getattr(self.batches, name)


def count_scored(scorer) -> list[int]:
    """[responses the scorer has handed over in its stats windows so far], kept up to date: the trainer takes
    a window after each step and after each validation (the stats left in the open window are added at the end)."""
    total, take = [0], scorer.take_stats

    def counting_take():
        stats = take()
        total[0] += stats["rubric/responses"]
        return stats

    scorer.take_stats = counting_take
    return total


def main() -> None:
    port, processes, process_id, workdir, config_arg = sys.argv[1:]
    if int(processes) > 1:  # before any JAX call; in main(): the checker processes re-import this module
        parallel.initialize_distributed(f"127.0.0.1:{port}", int(processes), int(process_id))
    config = get_config(config_arg)
    config.trainer.update(steps=2, prompts_per_step=4, validate_every=2, validation_prompts=2)
    config.train.ppo.mini_batch_size = 16  # 4 prompts x (3 + 1) rows: one optimizer step
    trainer = Trainer(config, workdir)
    trainer.batches = RecordingIterator(trainer.batches)
    scored = count_scored(trainer.scorer)
    assert trainer.run() == 2
    params = parallel.to_host(trainer.state.params)
    np.savez(Path(workdir) / f"params_{process_id}.npz",
             **{jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(params)})
    print(json.dumps(dict(scored=scored[0] + trainer.scorer.stats.responses, prompts=trainer.batches.prompts,
                          devices=jax.device_count())))
    if int(processes) > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
