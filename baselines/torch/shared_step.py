"""What the JAX and PyTorch HeRL steps share besides the step's host phases (``rl_step.Collector``): timing
the generate calls and the metrics both report. Free of torch, which the JAX benchmark worker never loads."""

from __future__ import annotations

import collections
import time

from herl_jax.sampling import SampleOutput, Sampler, SamplingConfig


class GenerateTimer:
    """Wraps a ``Sampler`` (ours or ``torch_generate``), and is one: seconds and completion tokens per kind.

    Revisions are sampled with n = 1 and rollouts with n = rollout.n >= 2 (the config demands it), which
    tells the calls apart however the step chunks them. ``fixed_lengths`` drops the stop ids so every
    row runs to max_new_tokens: both frameworks then emit the same number of tokens.
    """

    def __init__(self, sampler: Sampler, fixed_lengths: bool = False):
        self.sampler = sampler
        self.fixed_lengths = fixed_lengths
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.tokens: dict[str, int] = collections.defaultdict(int)

    def __call__(self, policy, prompts, config: SamplingConfig, pad_id: int = 0) -> SampleOutput:
        if self.fixed_lengths:
            config = config.replace(stop_token_ids=())
        start = time.perf_counter()
        out = self.sampler(policy, prompts, config, pad_id=pad_id)
        kind = "revision" if config.n == 1 else "rollout"
        self.seconds[kind] += time.perf_counter() - start
        self.tokens[kind] += int(out.lengths.sum())
        return out


def step_metrics(timer: GenerateTimer, metrics: dict[str, float]) -> dict[str, float]:
    """The timings and counts both frameworks report for a step, from the step's metrics
    (``herl_jax.step.rl_step.step_metrics``, which both sides compute) and the generate timer."""
    out = {
        "rollout_seconds": timer.seconds["rollout"], "rollout_tokens": timer.tokens["rollout"],
        "revision_seconds": timer.seconds["revision"], "revision_tokens": timer.tokens["revision"],
        "score_seconds": metrics["time/score"], "update_seconds": metrics["time/update"],
        "train_tokens": int(metrics["samples/train_tokens"]), "train_rows": int(metrics["samples/train_rows"]),
        "step_seconds": metrics["time/step"], "reward_mean": metrics["reward/mean"],
    }
    out.update({k: v for k, v in metrics.items() if k.startswith("train/")})
    return out
