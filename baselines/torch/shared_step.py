"""What the JAX and PyTorch HeRL steps share besides ``collect_experience``: timing the generate calls,
the step's batch, and the metrics both report. Free of torch, which the JAX benchmark worker never loads."""

from __future__ import annotations

import collections
import time
from typing import Callable, Sequence

import numpy as np

from herl_jax.herl import TrainingRecord, collate
from herl_jax.sampling import SampleOutput, SamplingConfig
from herl_jax.training.experience import Experience


class GenerateTimer:
    """Wraps a ``generate_fn`` (ours or ``torch_generate``): seconds and completion tokens per kind.

    Revisions are sampled with n = 1 and rollouts with n = rollout.n >= 2 (the config demands it), which
    tells the calls apart however the step chunks them. ``fixed_lengths`` drops the stop ids so every
    row runs to max_new_tokens: both frameworks then emit the same number of tokens.
    """

    def __init__(self, generate_fn: Callable[..., SampleOutput], fixed_lengths: bool = False):
        self.generate_fn = generate_fn
        self.fixed_lengths = fixed_lengths
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.tokens: dict[str, int] = collections.defaultdict(int)

    def __call__(self, policy, prompts, config: SamplingConfig, pad_id: int = 0) -> SampleOutput:
        if self.fixed_lengths:
            config = config.replace(stop_token_ids=())
        start = time.perf_counter()
        out = self.generate_fn(policy, prompts, config, pad_id=pad_id)
        kind = "revision" if config.n == 1 else "rollout"
        self.seconds[kind] += time.perf_counter() - start
        self.tokens[kind] += int(out.lengths.sum())
        return out


def collate_experience(records: Sequence[TrainingRecord], cfg, pad_id: int) -> dict[str, np.ndarray]:
    """The step's records as one batch, rows padded up to whole PPO mini-batches (as the trainer does)."""
    mini = cfg.train.ppo.mini_batch_size
    return collate(records, pad_id=pad_id, bucket_size=cfg.trainer.sequence_bucket,
                   batch_size=-(-len(records) // mini) * mini)


def step_metrics(timer: GenerateTimer, experience: Experience, batch: dict[str, np.ndarray] | None,
                 update_seconds: float, step_seconds: float, update: dict[str, float]) -> dict[str, float]:
    """The timings and counts both frameworks report for a step (train_tokens: real tokens of the batch),
    plus the reward mean and the update's metrics under train/."""
    metrics = {
        "rollout_seconds": timer.seconds["rollout"], "rollout_tokens": timer.tokens["rollout"],
        "revision_seconds": timer.seconds["revision"], "revision_tokens": timer.tokens["revision"],
        "score_seconds": experience.counts.score_seconds, "update_seconds": update_seconds,
        "train_tokens": int(batch["attention_mask"].sum()) if batch is not None else 0,
        "train_rows": len(experience.records), "step_seconds": step_seconds,
        "reward_mean": float(np.mean(experience.rewards)) if experience.rewards else float("nan"),
    }
    metrics.update({f"train/{k}": v for k, v in update.items()})
    return metrics
