"""The public code's aggregation through the real train step: each micro-batch's own token mean,
averaged over the micro-batches that hold loss tokens, with the micro-batches the step forms (rows sorted
by length, each micro-batch trimmed to a multiple of ``bucket_size``)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from herl_jax.learner import Learner, mini_batch_normalizer, policy_loss
from herl_jax.learner.config import LearnerConfig
from tests.training.test_loss import public_micro_token_mean_loss
from tests.training.tiny import BUCKET, LOSS, random_batch, sgd_recording_gradient, tiny_model

STEP = LearnerConfig(dataclasses.replace(LOSS, agg_mode="micro_token_mean"), micro_batch_size=2, temperature=0.7,
                     logprob_chunk_size=8)


@pytest.fixture(scope="module")
def setup():
    model = tiny_model(seed=3)
    learner = Learner(model, sgd_recording_gradient(0.1), STEP)
    batch = random_batch(seed=12, n=6, batch_size=8)  # rows 6 and 7: padding, no loss tokens
    logp = np.asarray(learner.compute_logprobs(learner.init_state(model).params, batch, BUCKET))
    rng = np.random.default_rng(12)
    old, ref = ((logp + rng.normal(size=logp.shape) * 0.3).astype(np.float32) for _ in range(2))
    return model, learner, batch, old, ref


def _micro_batch_order(batch):
    """Rows in micro-batch order: by attended length, ties in row order."""
    return sorted(range(batch["input_ids"].shape[0]), key=lambda b: int(batch["attention_mask"][b].sum()))


def _model_logprobs_and_entropy(model, params, batch):
    """float64 log-probs of the targets and entropies [B, T] from one full-width forward."""
    logits = nnx.merge(nnx.graphdef(model), params)(batch["input_ids"], batch["attention_mask"], batch["positions"])
    logits = np.asarray(logits, np.float64) / STEP.temperature
    logits -= logits.max(-1, keepdims=True)
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    logp = np.take_along_axis(logp_all, batch["targets"][..., None], -1)[..., 0]
    return logp, -(np.exp(logp_all) * logp_all).sum(-1)


@pytest.mark.parametrize("bucket_size", [BUCKET // 2, BUCKET])  # trimmed widths, or all at full width
def test_step_loss_is_the_mean_of_micro_batch_token_means(setup, bucket_size):
    model, learner, batch, old, ref = setup
    state = learner.init_state(model)
    logp, entropy = _model_logprobs_and_entropy(model, state.params, batch)
    order = _micro_batch_order(batch)
    assert order != sorted(order)  # the micro-batches are not consecutive rows
    take = {k: np.asarray(v)[order] for k, v in dict(logp=logp, old=old, ref=ref, entropy=entropy).items()}
    expected = public_micro_token_mean_loss(
        take["logp"], take["old"], take["ref"], take["entropy"], batch["advantages"][order],
        batch["is_revision"][order], batch["loss_mask"][order], STEP.loss, STEP.micro_batch_size)

    _, metrics = learner.optimizer_step(state, batch, old, ref, bucket_size=bucket_size)
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=2e-5)


def test_bucketing_changes_the_public_loss(setup):
    """The grouping matters under micro_token_mean: rows by length against consecutive rows, so the test
    above can tell whether the step sorts."""
    model, _, batch, old, ref = setup
    params = nnx.state(model, nnx.Param)
    logp, entropy = _model_logprobs_and_entropy(model, params, batch)
    losses = []
    for o in (list(range(batch["input_ids"].shape[0])), _micro_batch_order(batch)):
        losses.append(public_micro_token_mean_loss(
            logp[o], old[o], ref[o], entropy[o], batch["advantages"][o], batch["is_revision"][o],
            batch["loss_mask"][o], STEP.loss, STEP.micro_batch_size))
    assert abs(losses[0] - losses[1]) > 1e-3 * abs(losses[0])


@pytest.mark.parametrize("bucket_size", [BUCKET // 2, BUCKET])
def test_step_gradient_is_that_of_the_direct_grouped_loss(setup, bucket_size):
    """The accumulated (trimmed, chunked) gradient equals that of one full-width forward whose loss sums
    policy_loss over the same row groups, K = 3 micro-batches holding loss tokens (the 4th is padding)."""
    model, learner, batch, old, ref = setup
    state = learner.init_state(model)
    order = np.asarray(_micro_batch_order(batch))
    groups = [order[i : i + STEP.micro_batch_size] for i in range(0, len(order), STEP.micro_batch_size)]
    k = sum(bool(batch["loss_mask"][g].any()) for g in groups)
    assert k == 3
    jb = {key: jnp.asarray(v) for key, v in batch.items()}
    norm = mini_batch_normalizer(jb["loss_mask"], jb["is_revision"], num_micro_batches=k)
    graphdef = nnx.graphdef(model)

    def direct_loss(params):
        logits = nnx.merge(graphdef, params)(jb["input_ids"], jb["attention_mask"], jb["positions"])
        logp_all = jax.nn.log_softmax(logits / STEP.temperature, axis=-1)
        lp = jnp.take_along_axis(logp_all, jb["targets"][..., None], -1)[..., 0]
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1)
        return sum(policy_loss(lp[g], old[g], jb["advantages"][g], jb["is_revision"][g], jb["loss_mask"][g], norm,
                               STEP.loss, ref_logprobs=ref[g], entropy=entropy[g])[0] for g in groups)

    expected = jax.jit(jax.grad(direct_loss))(state.params)
    new_state, _ = learner.optimizer_step(state, batch, old, ref, bucket_size=bucket_size)
    for a, e in zip(jax.tree.leaves(new_state.opt_state), jax.tree.leaves(expected), strict=True):
        e = np.asarray(e)
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-5, atol=1e-5 * np.abs(e).max())
