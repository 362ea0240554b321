"""I_top (Eq. 5): ties at the max, the success threshold, the cap, the variant switch."""

import pytest

from herl_jax.herl import default_config, select_candidates
from herl_jax.herl.config import HerlConfig


def _cfg(**overrides):
    cfg = default_config()
    cfg.update(overrides)
    return HerlConfig(**cfg)


def test_all_rollouts_tied_at_the_max_are_candidates():
    assert select_candidates([0.5, 0.75, 0.25, 0.75, 0.75 - 1e-9], _cfg()) == (1, 3, 4)


def test_a_successful_rollout_blocks_revision():
    assert select_candidates([0.2, 1.0, 0.5], _cfg()) == ()
    assert select_candidates([0.2, 1.0 - 1e-9, 0.5], _cfg()) == ()  # within tie_atol of success
    assert select_candidates([0.2, 0.8, 0.5], _cfg(success_threshold=0.8)) == ()


def test_all_zero_group_revises_everyone():
    assert select_candidates([0.0] * 7, _cfg()) == tuple(range(7))


def test_cap_prefers_more_satisfied_items_then_lower_index():
    rewards = [0.5] * 6
    assert select_candidates(rewards, _cfg(max_candidates=3)) == (0, 1, 2)
    assert select_candidates(rewards, _cfg(max_candidates=3), num_satisfied=[1, 2, 1, 3, 2, 1]) == (1, 3, 4)


@pytest.mark.parametrize("variant,revises", [("rlvr", False), ("naive_he", True), ("he", True), ("herl", True)])
def test_variant_switch(variant, revises):
    assert bool(select_candidates([0.0, 0.5], _cfg(variant=variant))) == revises


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="variant"):
        select_candidates([0.0], _cfg(variant="grpo"))
