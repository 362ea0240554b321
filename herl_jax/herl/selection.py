"""I_top: which rollouts of a group get revised (Eq. 5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from herl_jax.herl.config import HerlConfig


def select_candidates(
    rewards: Sequence[float], cfg: HerlConfig, num_satisfied: Sequence[int] | None = None
) -> tuple[int, ...]:
    """Indices of the rollouts to revise, ascending; empty when nothing is to be revised.

    rewards: [N] the group's rewards. Empty result when the variant does not revise, or when the best
    reward reaches ``cfg.success_threshold`` (within ``cfg.tie_atol``). Otherwise every rollout within
    ``cfg.tie_atol`` of the maximum is tied; if more than ``cfg.max_candidates`` are tied, the kept ones
    are those with the most satisfied rubric items (``num_satisfied`` [N], when given), then the
    lowest index — a deterministic rule.
    """
    if not cfg.revises:
        return ()
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"rewards must be a non-empty 1-D sequence, got shape {r.shape}")
    best = r.max()
    if best >= cfg.success_threshold - cfg.tie_atol:
        return ()
    tied = [int(i) for i in np.flatnonzero(r >= best - cfg.tie_atol)]
    if num_satisfied is not None:
        tied.sort(key=lambda i: (-num_satisfied[i], i))
    return tuple(sorted(tied[: cfg.max_candidates]))
