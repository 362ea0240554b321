"""Means over seeds with a 95% Student t interval, computed without scipy.

The two-sided 95% quantile t_{0.975, df} comes from a table for df = 1..30 (the standard values to six
decimals, e.g. df 2: 4.302653, df 4: 2.776445) and, for df > 30, from the Cornish-Fisher expansion of t
around the normal quantile z = 1.959964 in powers of 1/df (Abramowitz & Stegun 26.7.5, terms to 1/df^3;
its error there is below 1e-5). The interval is mean ± t_{0.975, n-1} · sd / sqrt(n), with sd the sample
standard deviation (ddof 1); one value has no interval.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

Z_975 = 1.959963984540054
# df -> t_{0.975, df}, df = 1..30.
T_975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
         2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
         2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t_quantile_975(df: int) -> float:
    """The two-sided 95% quantile of Student's t with `df` >= 1 degrees of freedom."""
    if df < 1:
        raise ValueError(f"df={df}: must be >= 1")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


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
