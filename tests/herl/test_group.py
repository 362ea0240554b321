"""Group logic against hand-worked cases: τ̃* (Eq. 7), the signed bonus (Eq. 8), append / replace,
the fallback copy, the variants, and advantages (Eq. 10)."""

import numpy as np
import pytest

from herl_jax.herl.config import HerlConfig
from herl_jax.herl import (
    Sample,
    assemble_group,
    best_revision,
    default_config,
    group_advantages,
    signed_bonus,
)

Q = (1, 2, 3)  # the prompt's token ids
ORIGINAL_REWARDS = [0.5, 0.25, 0.5, 0.0]
ORIGINALS = [Sample(Q, (10 + i, 20 + i), r, sampler_logprobs=(-1.0, -2.0)) for i, r in enumerate(ORIGINAL_REWARDS)]
CANDIDATES = (0, 2)


def _revisions(rewards):
    """One revision per candidate, each under its own revise prompt (q, H_i)."""
    return [Sample(Q + (90, 91 + i), (30 + i, 31, 32), r, sampler_logprobs=(-0.5, -0.5, -0.5))
            for i, r in zip(CANDIDATES, rewards)]


def _cfg(**overrides):
    cfg = default_config()
    cfg.update(overrides)
    return HerlConfig(**cfg)


def _advantages(rewards):
    r = np.asarray(rewards, np.float64)
    return (r - r.mean()) / (np.std(r, ddof=1) + 1e-6)


def test_herl_append_with_signed_bonus():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg())
    # τ̃* is the revision of candidate 2 (0.75). Candidate 0's revision is worse: its reward drops.
    expected = [0.5 + 0.05 * (0.25 - 0.5), 0.25, 0.5 + 0.05 * (0.75 - 0.5), 0.0, 0.75]
    assert expected[0] == pytest.approx(0.4875) and expected[2] == pytest.approx(0.5125)
    assert group.best_revision == 1 and not group.used_fallback and group.replaced_slot is None
    assert group.bonus == pytest.approx((0.05 * (0.25 - 0.5), 0.05 * (0.75 - 0.5)))
    assert len(group.records) == 5
    np.testing.assert_allclose([r.reward for r in group.records], expected)
    np.testing.assert_allclose([r.advantage for r in group.records], _advantages(expected))
    assert [r.is_revision for r in group.records] == [False] * 4 + [True]
    extra = group.records[-1]
    assert extra.context_ids == Q + (90, 93) and extra.response_ids == (32, 31, 32)
    assert extra.sampler_logprobs == (-0.5, -0.5, -0.5)
    assert all(r.context_ids == Q for r in group.records[:4])


def test_replace_overwrites_one_seeded_random_slot():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg(group_mode="replace"),
                           np.random.default_rng(7))
    slot = int(np.random.default_rng(7).integers(4))
    assert group.replaced_slot == slot and len(group.records) == 4
    rewards = [0.4875, 0.25, 0.5125, 0.0]
    rewards[slot] = 0.75
    np.testing.assert_allclose([r.reward for r in group.records], rewards)
    np.testing.assert_allclose([r.advantage for r in group.records], _advantages(rewards))
    assert [r.is_revision for r in group.records] == [i == slot for i in range(4)]
    with pytest.raises(ValueError, match="rng"):
        assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg(group_mode="replace"))


def test_require_improvement_falls_back_to_a_copy_of_the_best_original():
    cfg = _cfg(require_improvement=True)
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.0]), cfg)
    # Both revisions are worse than 0.5 (originals 0 and 2, tied): original 0, the lower index, is copied
    # with its bonused reward 0.4875 (original 2's is 0.475).
    assert group.used_fallback and group.fallback_copy == 0 and group.best_revision == 0
    extra = group.records[-1]
    assert not extra.is_revision
    assert (extra.context_ids, extra.response_ids) == (Q, ORIGINALS[0].response_ids)
    assert extra.sampler_logprobs == ORIGINALS[0].sampler_logprobs
    rewards = [0.4875, 0.25, 0.475, 0.0, 0.4875]
    np.testing.assert_allclose([r.reward for r in group.records], rewards)
    np.testing.assert_allclose([r.advantage for r in group.records], _advantages(rewards))


def _public_fallback(rewards, num_satisfied):
    """The public code's fallback, re-derived: the best original by pre-bonus reward, then by more
    satisfied items, then by the lowest index."""
    return max(range(len(rewards)), key=lambda i: (rewards[i], num_satisfied[i], -i))


def test_fallback_picks_the_best_original_before_the_bonus():
    """Row 0 is best (0.8), but its revision scores 0.0, so the bonus lowers it to 0.56, below row 2's
    0.6: the copy is still of row 0, carrying its post-bonus reward."""
    rewards = [0.8, 0.2, 0.6, 0.2]
    originals = [Sample(Q, (10 + i,), r) for i, r in enumerate(rewards)]
    revision = [Sample(Q + (90,), (30,), 0.0)]
    group = assemble_group(originals, (0,), revision, _cfg(require_improvement=True, alpha=0.3))
    bonused = [0.8 + 0.3 * (0.0 - 0.8), 0.2, 0.6, 0.2]
    assert bonused[0] < bonused[2] and _public_fallback(rewards, [0] * 4) == 0
    assert group.used_fallback and group.records[-1].response_ids == (10,)
    np.testing.assert_allclose([r.reward for r in group.records], bonused + [bonused[0]])
    np.testing.assert_allclose([r.advantage for r in group.records], _advantages(bonused + [bonused[0]]))


def test_fallback_ties_go_to_more_satisfied_items_then_the_lower_index():
    rewards = [0.5, 0.75, 0.75, 0.25]
    originals = [Sample(Q, (10 + i,), r) for i, r in enumerate(rewards)]
    revisions = [Sample(Q + (90 + i,), (30 + i,), r) for i, r in zip((1, 2), (0.25, 0.5))]
    cfg = _cfg(require_improvement=True)
    for counts, expected in (([1, 2, 3, 0], 2), ([1, 3, 3, 0], 1), ([9, 2, 1, 0], 1), (None, 1)):
        group = assemble_group(originals, (1, 2), revisions, cfg, num_satisfied=counts)
        assert expected == _public_fallback(rewards, counts or [0] * 4)
        assert group.records[-1].response_ids == (10 + expected,) and group.fallback_copy == expected, counts


def test_fallback_matches_the_public_rule_on_random_groups():
    rng = np.random.default_rng(0)
    cfg = _cfg(require_improvement=True, alpha=0.5, group_mode="replace")
    for _ in range(200):
        n = int(rng.integers(2, 8))
        rewards = list(rng.integers(0, 4, size=n) / 4)  # quarters: ties are common
        counts = [int(c) for c in rng.integers(0, 3, size=n)]
        candidates = sorted(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False).tolist())
        revision_rewards = list(rng.integers(0, 4, size=len(candidates)) / 4)
        originals = [Sample(Q, (10 + i,), r) for i, r in enumerate(rewards)]
        revisions = [Sample(Q + (90,), (30 + i,), r) for i, r in zip(candidates, revision_rewards)]
        group = assemble_group(originals, candidates, revisions, cfg, np.random.default_rng(1), counts)
        assert group.used_fallback == (max(revision_rewards) < max(rewards))
        if group.used_fallback:
            copy = _public_fallback(rewards, counts)
            assert group.fallback_copy == copy
            extra = group.records[group.replaced_slot]
            bonus = {c: 0.5 * (r - rewards[c]) for c, r in zip(candidates, revision_rewards)}
            assert extra.response_ids == (10 + copy,) and not extra.is_revision
            assert extra.reward == pytest.approx(rewards[copy] + bonus.get(copy, 0.0))


def test_satisfied_counts_must_match_the_originals():
    with pytest.raises(ValueError, match="satisfied counts"):
        assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.0]), _cfg(require_improvement=True),
                       num_satisfied=[1, 2])


def test_a_revision_that_ties_the_best_original_is_kept():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.5, 0.25]), _cfg(require_improvement=True))
    assert not group.used_fallback and group.records[-1].is_revision


def test_without_require_improvement_a_worse_revision_still_joins():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.0]), _cfg())
    assert group.records[-1].is_revision and group.records[-1].reward == 0.25


def test_naive_he_places_the_revision_under_q_alone_without_bonus():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg(variant="naive_he"))
    extra = group.records[-1]
    assert extra.is_revision and extra.context_ids == Q and extra.response_ids == (32, 31, 32)
    assert extra.sampler_logprobs is None  # they were taken under (q, H)
    np.testing.assert_allclose([r.reward for r in group.records], ORIGINAL_REWARDS + [0.75])


def test_he_keeps_hindsight_context_without_bonus():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg(variant="he"))
    assert group.records[-1].context_ids == Q + (90, 93)
    np.testing.assert_allclose([r.reward for r in group.records], ORIGINAL_REWARDS + [0.75])


def test_no_candidates_is_plain_grpo():
    successful = [Sample(Q, (5,), r) for r in (1.0, 0.5, 0.0, 1.0)]
    group = assemble_group(successful, (), (), _cfg())
    assert len(group.records) == 4 and not any(r.is_revision for r in group.records)
    assert group.best_revision is None and not group.used_fallback and group.bonus == ()
    np.testing.assert_allclose([r.advantage for r in group.records], _advantages([1.0, 0.5, 0.0, 1.0]))


def test_all_zero_group_with_all_zero_revisions_gets_zero_advantages():
    zeros = [Sample(Q, (5,), 0.0) for _ in range(3)]
    revisions = [Sample(Q + (9,), (6,), 0.0) for _ in range(3)]
    group = assemble_group(zeros, (0, 1, 2), revisions, _cfg())
    assert [r.advantage for r in group.records] == [0.0] * 4


def test_rlvr_rejects_revisions():
    with pytest.raises(ValueError, match="does not revise"):
        assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg(variant="rlvr"))


@pytest.mark.parametrize(
    "name,revise,under_hindsight,alpha",
    [("rlvr", False, False, 0.0), ("naive_he", True, False, 0.0), ("he", True, True, 0.0),
     ("herl", True, True, 0.05)],
)
def test_variant_table(name, revise, under_hindsight, alpha):
    cfg = _cfg(variant=name)
    assert (cfg.revises, cfg.under_hindsight, cfg.bonus_alpha) == (revise, under_hindsight, alpha)


def test_helpers():
    assert best_revision([0.25, 0.75, 0.75]) == 1  # first on ties
    bonused, bonus = signed_bonus([0.5, 0.2, 0.5], [0, 2], [1.0, 0.0], 0.1)
    np.testing.assert_allclose(bonused, [0.55, 0.2, 0.45])
    np.testing.assert_allclose(bonus, [0.05, -0.05])
    rewards = np.random.default_rng(0).uniform(size=8)
    np.testing.assert_allclose(group_advantages(rewards, 1e-6),
                               (rewards - rewards.mean()) / (np.std(rewards, ddof=1) + 1e-6))
    std = np.sqrt(0.5)  # unbiased std of [1, 0]
    np.testing.assert_allclose(group_advantages([1.0, 0.0], eps=0.5), [0.5 / (std + 0.5), -0.5 / (std + 0.5)])
    with pytest.raises(ValueError):
        group_advantages([1.0])
