"""Means over seeds with a 95% Student t interval: mean ± t_{0.975, n-1} · sd / sqrt(n), with sd the sample
standard deviation (ddof 1) and the quantile from scipy.stats; one value has no interval."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from scipy.stats import t as student_t


def t_quantile_975(df: int) -> float:
    """The two-sided 95% quantile of Student's t with `df` >= 1 degrees of freedom."""
    if df < 1:
        raise ValueError(f"df={df}: must be >= 1")
    return float(student_t.ppf(0.975, df))


@dataclasses.dataclass(frozen=True)
class Estimate:
    """The mean of `n` values and the half-width of its 95% t interval (None for n < 2)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    def to_json(self) -> dict:
        return {"mean": self.mean, "ci95_half_width": self.half_width, "n": self.n}


def estimate(values: Sequence[float]) -> Estimate | None:
    """The mean and 95% t interval of the finite `values`; None when there is none."""
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(values)
    if not n:
        return None
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, None, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return Estimate(mean, t_quantile_975(n - 1) * sd / math.sqrt(n), n)
