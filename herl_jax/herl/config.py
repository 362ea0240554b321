"""The HeRL section: the group logic's settings and the four algorithm variants (docs/algorithm.md §4, §7, §10)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from herl_jax.herl import prompts
from herl_jax.sections import check, section_config

VARIANTS = ("rlvr", "naive_he", "he", "herl")


@dataclasses.dataclass(frozen=True)
class HerlConfig:
    """The ``herl`` section: the variant and the group logic; defaults follow the paper. ``prompt`` is the
    revise-prompt sub-section (herl.prompts; its templates are data, kept as given)."""

    variant: str = "herl"  # rlvr | naive_he | he | herl (the properties below say what each does)
    alpha: float = 0.05  # Eq. 8 bonus coefficient (herl only)
    success_threshold: float = 1.0  # no revision once a rollout reaches this reward
    tie_atol: float = 1e-6  # rewards this close to the group max count as tied
    max_candidates: int = 16  # cap on |I_top|; ties beyond it are dropped by a fixed rule
    group_mode: str = "append"  # append: N+1 members (paper) | replace: overwrite one random slot (code)
    require_improvement: bool = False  # code: True, keep τ̃* only if it ties or beats the best original
    adv_eps: float = 1e-6  # Eq. 10 denominator epsilon
    prompt: Any = dataclasses.field(default_factory=prompts.default_config)

    def __post_init__(self):
        check(self, [
            (self.variant in VARIANTS, "variant", f"expected one of {', '.join(VARIANTS)}"),
            (math.isfinite(self.alpha) and self.alpha >= 0, "alpha", "must be >= 0 and finite"),
            (math.isfinite(self.success_threshold), "success_threshold", "must be finite"),
            (math.isfinite(self.tie_atol) and self.tie_atol >= 0, "tie_atol", "must be >= 0 and finite"),
            (self.max_candidates >= 1, "max_candidates", "must be >= 1"),
            (self.group_mode in ("append", "replace"), "group_mode", "expected append or replace"),
            (math.isfinite(self.adv_eps) and self.adv_eps > 0, "adv_eps", "must be > 0 and finite"),
        ])
        if self.prompt.template not in self.prompt.templates:
            raise ValueError(f"prompt.template={self.prompt.template!r}: expected one of "
                             f"{sorted(self.prompt.templates)}")

    @property
    def revises(self) -> bool:
        """Whether the top failed rollouts are revised at all (rlvr: plain GRPO, no)."""
        return self.variant != "rlvr"

    @property
    def under_hindsight(self) -> bool:
        """τ̃* trains under (q, H) with H masked (he, herl), or under q alone (naive_he)."""
        return self.variant in ("he", "herl")

    @property
    def bonus_alpha(self) -> float:
        """Eq. 8's α: ``alpha`` for herl, 0 for the others (the bonus is herl's alone)."""
        return float(self.alpha) if self.variant == "herl" else 0.0

    @property
    def group_size_extra(self) -> int:
        """Members a group has beyond the N rollouts: 1 when revisions are appended, else 0."""
        return int(self.revises and self.group_mode == "append")


def default_config():
    """The ``herl`` section's ConfigDict: HerlConfig's defaults."""
    return section_config(HerlConfig())
