"""Group logic against hand-worked cases: τ̃* (Eq. 7), the signed bonus (Eq. 8), append / replace,
the fallback copy, the variants, and advantages (Eq. 10)."""

import numpy as np
import pytest

from herl_jax.herl import (
    Sample,
    assemble_group,
    best_revision,
    default_config,
    group_advantages,
    signed_bonus,
    variant_from_config,
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
    return cfg


def _advantages(rewards):
    r = np.asarray(rewards, np.float64)
    return (r - r.mean()) / (np.std(r, ddof=1) + 1e-6)


def test_herl_append_with_signed_bonus():
    group = assemble_group(ORIGINALS, CANDIDATES, _revisions([0.25, 0.75]), _cfg())
    # τ̃* is the revision of candidate 2 (0.75). Candidate 0's revision is worse: its reward drops.
    expected = [0.5 + 0.05 * (0.25 - 0.5), 0.25, 0.5 + 0.05 * (0.75 - 0.5), 0.0, 0.75]
    assert expected[0] == pytest.approx(0.4875) and expected[2] == pytest.approx(0.5125)
    assert group.best_revision == 1 and not group.used_fallback and group.replaced_slot is None
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
    # Both revisions are worse than 0.5: bonused rewards 0.4875 and 0.475; original 0 is copied.
    assert group.used_fallback and group.best_revision == 0
    extra = group.records[-1]
    assert not extra.is_revision
    assert (extra.context_ids, extra.response_ids) == (Q, ORIGINALS[0].response_ids)
    assert extra.sampler_logprobs == ORIGINALS[0].sampler_logprobs
    rewards = [0.4875, 0.25, 0.475, 0.0, 0.4875]
    np.testing.assert_allclose([r.reward for r in group.records], rewards)
    np.testing.assert_allclose([r.advantage for r in group.records], _advantages(rewards))


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
    assert group.best_revision is None and not group.used_fallback
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
    v = variant_from_config(_cfg(variant=name))
    assert (v.revise, v.under_hindsight, v.alpha) == (revise, under_hindsight, alpha)


def test_helpers():
    assert best_revision([0.25, 0.75, 0.75]) == 1  # first on ties
    np.testing.assert_allclose(signed_bonus([0.5, 0.2, 0.5], [0, 2], [1.0, 0.0], 0.1), [0.55, 0.2, 0.45])
    rewards = np.random.default_rng(0).uniform(size=8)
    np.testing.assert_allclose(group_advantages(rewards, 1e-6),
                               (rewards - rewards.mean()) / (np.std(rewards, ddof=1) + 1e-6))
    std = np.sqrt(0.5)  # unbiased std of [1, 0]
    np.testing.assert_allclose(group_advantages([1.0, 0.0], eps=0.5), [0.5 / (std + 0.5), -0.5 / (std + 0.5)])
    with pytest.raises(ValueError):
        group_advantages([1.0])
