"""The HeRL group-logic config and the four algorithm variants (docs/algorithm.md §4, §7, §10)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from herl_jax.herl import prompts


@dataclasses.dataclass(frozen=True)
class Variant:
    """What one variant does with the top failed rollouts.

    revise: sample revisions at all (False: plain GRPO).
    under_hindsight: train τ̃* under (q, H) with H masked (True) or under q alone (False, NaiveHE).
    alpha: the bonus coefficient of Eq. 8 (0 disables the bonus).
    """

    name: str
    revise: bool
    under_hindsight: bool
    alpha: float


def variant_from_config(cfg) -> Variant:
    """Maps ``cfg.variant`` (rlvr | naive_he | he | herl) to its behaviour; only herl uses ``cfg.alpha``."""
    match cfg.variant:
        case "rlvr":
            return Variant("rlvr", revise=False, under_hindsight=False, alpha=0.0)
        case "naive_he":
            return Variant("naive_he", revise=True, under_hindsight=False, alpha=0.0)
        case "he":
            return Variant("he", revise=True, under_hindsight=True, alpha=0.0)
        case "herl":
            return Variant("herl", revise=True, under_hindsight=True, alpha=float(cfg.alpha))
    raise ValueError(f"unknown variant {cfg.variant!r}; expected rlvr, naive_he, he or herl")


@dataclasses.dataclass(frozen=True)
class HerlConfig:
    """The ``herl`` sub-config, checked once and with its variant resolved (see ``default_config`` for
    each field). ``prompt`` is the revise-prompt section (templates are data, kept as given)."""

    variant: Variant
    success_threshold: float = 1.0
    tie_atol: float = 1e-6
    max_candidates: int = 16
    group_mode: str = "append"
    require_improvement: bool = False
    adv_eps: float = 1e-6
    prompt: Any = None

    def __post_init__(self):
        rules = [
            (math.isfinite(self.variant.alpha) and self.variant.alpha >= 0, "alpha", "must be >= 0 and finite"),
            (math.isfinite(self.success_threshold), "success_threshold", "must be finite"),
            (math.isfinite(self.tie_atol) and self.tie_atol >= 0, "tie_atol", "must be >= 0 and finite"),
            (self.max_candidates >= 1, "max_candidates", "must be >= 1"),
            (self.group_mode in ("append", "replace"), "group_mode", "expected append or replace"),
            (math.isfinite(self.adv_eps) and self.adv_eps > 0, "adv_eps", "must be > 0 and finite"),
        ]
        for ok, name, rule in rules:
            if not ok:
                value = self.variant.alpha if name == "alpha" else getattr(self, name)
                raise ValueError(f"{name}={value!r}: {rule}")
        if self.prompt is not None and self.prompt.template not in self.prompt.templates:
            raise ValueError(f"prompt.template={self.prompt.template!r}: expected one of "
                             f"{sorted(self.prompt.templates)}")

    @property
    def group_size_extra(self) -> int:
        """Members a group has beyond the N rollouts: 1 when revisions are appended, else 0."""
        return int(self.variant.revise and self.group_mode == "append")

    @classmethod
    def from_config(cls, cfg) -> HerlConfig:
        """From the ``herl`` ConfigDict: the variant resolved from ``variant`` and ``alpha``."""
        return cls(variant=variant_from_config(cfg), success_threshold=float(cfg.success_threshold),
                   tie_atol=float(cfg.tie_atol), max_candidates=int(cfg.max_candidates), group_mode=cfg.group_mode,
                   require_improvement=bool(cfg.require_improvement), adv_eps=float(cfg.adv_eps), prompt=cfg.prompt)


def default_config():
    """The ``herl`` sub-config (an ml_collections ConfigDict); defaults follow the paper."""
    from ml_collections import ConfigDict  # lazy: host-only dependency

    cfg = ConfigDict()
    cfg.variant = "herl"  # rlvr | naive_he | he | herl
    cfg.alpha = 0.05  # Eq. 8 bonus coefficient (herl only)
    cfg.success_threshold = 1.0  # no revision once a rollout reaches this reward
    cfg.tie_atol = 1e-6  # rewards this close to the group max count as tied
    cfg.max_candidates = 16  # cap on |I_top|; ties beyond it are dropped by a fixed rule
    cfg.group_mode = "append"  # append: N+1 members (paper) | replace: overwrite one random slot (code)
    cfg.require_improvement = False  # code: True, keep τ̃* only if it ties or beats the best original
    cfg.adv_eps = 1e-6  # Eq. 10 denominator epsilon
    cfg.prompt = prompts.default_config()
    return cfg
