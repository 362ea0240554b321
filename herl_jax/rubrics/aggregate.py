"""Eq. 4: R(τ; q) = Σ_j w_j I_j / Σ_j w_j, with explicit policies for pitfalls and unscored items.

Negative weights (pitfalls) are not covered by Eq. 4 as written, so they follow a switch:

- ``healthbench`` (default): Σ_j w_j I_j / Σ_{w_j > 0} w_j. A committed pitfall subtracts its points
  and the score can go below 0, exactly as HealthBench scores one example (it clips only the
  benchmark mean). Default because it keeps the information a pitfall carries in the reward, matches
  the metric the paper reports on HealthBench-500, and equals Eq. 4 whenever all weights are
  positive, so instruction-following rubrics score exactly as in the paper.
- ``clamp``: every w_j < 0 becomes 0 (the public code), so pitfalls are ignored.

Unscored items (a checker that raised or timed out, a judge that never answered) follow a second
switch: ``drop`` (default) returns None, so the trainer excludes the sample from the loss;
``zero`` scores the item as I_j = 0 (the public code: a judge error scores 0).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

NegativeWeights = Literal["healthbench", "clamp"]
UnscoredPolicy = Literal["drop", "zero"]
NEGATIVE_WEIGHT_POLICIES = ("healthbench", "clamp")
UNSCORED_POLICIES = ("drop", "zero")


def rubric_score(
    weights: Sequence[float],
    met: Sequence[bool | None],
    negative_weights: NegativeWeights = "healthbench",
    unscored: UnscoredPolicy = "drop",
) -> float | None:
    """Eq. 4 for one response; `met[j] is None` marks item j unscored. None means "drop the sample"."""
    if len(weights) != len(met):
        raise ValueError(f"{len(weights)} weights but {len(met)} verdicts")
    if negative_weights not in NEGATIVE_WEIGHT_POLICIES:
        raise ValueError(f"negative_weights must be one of {NEGATIVE_WEIGHT_POLICIES}, got {negative_weights!r}")
    if unscored not in UNSCORED_POLICIES:
        raise ValueError(f"unscored must be one of {UNSCORED_POLICIES}, got {unscored!r}")
    if unscored == "drop" and any(m is None for m in met):
        return None
    if negative_weights == "clamp":
        weights = [max(w, 0.0) for w in weights]
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"Eq. 4 needs finite weights, got {list(weights)}")
    if not any(w > 0 for w in weights):
        raise ValueError("Eq. 4 needs at least one positive weight")
    # The ratio does not change when every weight is divided by the largest magnitude, and the sums of the
    # scaled weights (each at most 1 in magnitude) cannot overflow, as sums of weights near 1e308 would.
    scale = max(abs(w) for w in weights)
    scaled = [w / scale for w in weights]
    return math.fsum(w for w, m in zip(scaled, met) if m) / math.fsum(w for w in scaled if w > 0)
