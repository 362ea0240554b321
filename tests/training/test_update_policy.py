"""The host-side PPO loop on a tiny Decoder: it learns the right way, and never recompiles per batch."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from herl_jax.herl import TrainingRecord, collate
from herl_jax.learner import update_policy
from herl_jax.learner.config import PPOConfig
from tests.training.tiny import BUCKET, PAD, compilations, random_batch


@pytest.fixture(scope="module")
def ppo():
    """The PPO loop's settings: 8-row mini-batches (the shared learner's shapes), two epochs."""
    return PPOConfig(mini_batch_size=8, epochs=2, seed=0)


def _copy(params):
    return jax.tree.map(jnp.copy, params)


def _disjoint_rollouts():
    """8 rows; each response uses its own tokens (1..24) after a context from 25..31, so rows do not
    compete for the same logits. Advantages ±1; rows 3 and 7 are revisions under a longer context."""
    advantages = [1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0]
    records = []
    for i, adv in enumerate(advantages):
        context = [25 + i % 7, 26 + i % 5] + ([31, 30, 29] if i in (3, 7) else [])
        records.append(TrainingRecord(context, [1 + 3 * i, 2 + 3 * i, 3 + 3 * i], advantage=adv, reward=0.0,
                                      is_revision=i in (3, 7)))
    return collate(records, pad_id=PAD, bucket_size=BUCKET)


def _sequence_logprobs(learner, params, batch):
    logp = np.asarray(learner.compute_logprobs(params, batch, BUCKET))
    return np.where(batch["loss_mask"], logp, 0.0).sum(1)


def test_updates_raise_positive_and_lower_negative_sequences(model, learner, ppo):
    batch = _disjoint_rollouts()
    state = learner.init_state(model)
    ref_params = _copy(state.params)
    before = _sequence_logprobs(learner, state.params, batch)
    for _ in range(3):
        state, metrics = update_policy(state, batch, learner, ppo, ref_params=ref_params, bucket_size=BUCKET)
    change = _sequence_logprobs(learner, state.params, batch) - before
    assert int(state.step) == 3 * 2  # 3 updates x 2 epochs x 1 mini-batch
    assert np.all(change[batch["advantages"] > 0] > 0.05)
    assert np.all(change[batch["advantages"] < 0] < -0.05)
    assert metrics["kl"] > 0 and metrics["grad_norm"] > 0 and metrics["ratio_max"] > 1


def test_a_second_batch_of_the_same_bucket_does_not_recompile(model, learner, ppo):
    state = learner.init_state(model)
    ref_params = _copy(state.params)
    first, second = random_batch(seed=5, n=8, batch_size=8), random_batch(seed=6, n=6, batch_size=8)
    assert first["input_ids"].shape == second["input_ids"].shape  # same bucket, other lengths and values
    assert not np.array_equal(first["loss_mask"], second["loss_mask"])
    state, _ = update_policy(state, first, learner, ppo, ref_params=ref_params, bucket_size=BUCKET)

    with compilations() as events:
        state, metrics = update_policy(state, second, learner, ppo, ref_params=ref_params, bucket_size=BUCKET)
        jax.block_until_ready(state)
    assert events == []
    assert np.isfinite(metrics["loss"])


def test_shuffling_is_seeded(model, learner, ppo):
    """Two mini-batches per epoch: the same seed gives the same update, another seed another split."""
    batch = random_batch(seed=7, n=16, batch_size=16)
    params = []
    for seed in (0, 0, 1):
        cfg = dataclasses.replace(ppo, seed=seed)
        state = learner.init_state(model)
        state, _ = update_policy(state, batch, learner, cfg, ref_params=_copy(state.params), bucket_size=BUCKET)
        params.append(np.concatenate([np.ravel(p) for p in jax.tree.leaves(state.params)]))
    np.testing.assert_array_equal(params[0], params[1])
    assert np.abs(params[0] - params[2]).max() > 1e-4


def test_rows_must_fill_whole_mini_batches(model, learner, ppo):
    batch = random_batch(seed=8, n=6, batch_size=12)
    with pytest.raises(ValueError, match="mini-batches of 8"):
        update_policy(learner.init_state(model), batch, learner, ppo, bucket_size=BUCKET)
