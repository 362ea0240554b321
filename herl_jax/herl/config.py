"""The HeRL group-logic config and the four algorithm variants (ALGORITHM.md §4, §7)."""

from __future__ import annotations

import dataclasses

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
