"""Benchmark metrics as pure functions of per-example outcomes (no I/O, no model).

- IFEval / IFBench accuracy, as google-research's and AllenAI's `evaluation_lib` define it:
  prompt level = share of prompts whose instructions are all followed; instruction level = share of
  all instructions followed. Strict checks the response; loose also accepts eight trimmed variants.
- pass@k, with the unbiased estimator of Chen et al. (2021), and its analogue for a continuous reward,
  the expected best of k samples; both from n >= k samples drawn without replacement.
- HealthBench: the mean of per-example scores clipped to [0, 1] and its bootstrap standard error, as
  in OpenAI's simple-evals.
"""

from __future__ import annotations

from math import comb
from typing import Sequence

import numpy as np


def instruction_following_accuracy(follow_lists: Sequence[Sequence[bool]]) -> dict[str, float]:
    """{"prompt": ..., "instruction": ...} accuracy from one list of verdicts per prompt."""
    if not follow_lists:
        raise ValueError("no prompts to score")
    followed = sum(sum(map(bool, verdicts)) for verdicts in follow_lists)
    total = sum(len(verdicts) for verdicts in follow_lists)
    return {
        "prompt": sum(all(verdicts) for verdicts in follow_lists) / len(follow_lists),
        "instruction": followed / total,
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples succeeds) from c successes among n samples: 1 - C(n-c, k) / C(n, k).

    Computed as a product (Chen et al. 2021), stable for large n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def best_of_k(values: Sequence[float], k: int) -> float:
    """E[max of k samples drawn without replacement from `values`]: the unbiased best-of-k reward.

    With values sorted ascending, v_(i) is the maximum of C(i-1, k-1) of the C(n, k) subsets.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"best-of-k needs 1 <= k <= n, got n={n}, k={k}")
    weights = np.array([comb(i - 1, k - 1) for i in range(1, n + 1)], dtype=np.float64) / comb(n, k)
    return float(weights @ v)


def clipped_mean(values: Sequence[float]) -> float:
    return float(np.clip(np.mean(values), 0.0, 1.0))


def bootstrap_stderr(values: Sequence[float], samples: int = 1000, seed: int = 0) -> float:
    """Standard deviation of the clipped mean over `samples` bootstrap resamples (simple-evals)."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(samples, len(v)))].mean(axis=1)
    return float(np.std(np.clip(means, 0.0, 1.0)))
