"""The jitted train step through a real tiny Decoder: alignment, accumulation, masking, bf16."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from herl_jax import parallel
from herl_jax.herl import collate
from herl_jax.learner import Learner, mini_batch_normalizer
from herl_jax.learner.learner import micro_batch_loss, response_hidden
from tests.training.tiny import (BUCKET, PAD, STEP, full_width_loss, random_batch, random_records,
                                 sgd_recording_gradient, tiny_model)


def _off_policy(logp, seed, scale=0.3):
    """Old / reference log-probs near the current ones, so that ratios clip and the KL is nonzero."""
    return (logp + np.random.default_rng(seed).normal(size=logp.shape) * scale).astype(np.float32)


def _assert_trees_close(actual, expected, rtol):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        e = np.asarray(e)
        np.testing.assert_allclose(np.asarray(a), e, rtol=rtol, atol=rtol * np.abs(e).max())


def test_logprobs_match_each_record_run_alone(model, learner):
    records = random_records(seed=1, n=7)
    batch = collate(records, pad_id=PAD, bucket_size=BUCKET, batch_size=8)
    state = learner.init_state(model)
    logp = np.asarray(learner.compute_logprobs(state.params, batch, BUCKET))
    assert logp.shape == batch["targets"].shape
    # Reference: the model on each record alone (right-padded to BUCKET, which a causal model ignores).
    ids = np.full((len(records), BUCKET), PAD)
    for b, rec in enumerate(records):
        ids[b, : len(rec.token_ids)] = rec.token_ids
    logits = np.asarray(model(jnp.asarray(ids), jnp.asarray(ids != PAD)), np.float64) / STEP.temperature
    logits -= logits.max(-1, keepdims=True)
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for b, rec in enumerate(records):
        c, r = len(rec.context_ids), len(rec.response_ids)
        expected = logp_all[b, np.arange(c - 1, c + r - 1), rec.response_ids]
        np.testing.assert_allclose(logp[b][batch["loss_mask"][b]], expected, rtol=1e-5, atol=1e-5)


def test_micro_batch_accumulation_equals_the_full_batch_gradient(model, learner, batch):
    """The step's gradient, accumulated over 4 micro-batches of 2 rows, equals the gradient of one
    direct full-batch loss (full fp32 logits, no chunking, no scan)."""
    assert batch["input_ids"].shape[0] == 4 * STEP.micro_batch_size
    state = learner.init_state(model)
    logp = np.asarray(learner.compute_logprobs(state.params, batch, BUCKET))
    old, ref = _off_policy(logp, 1), _off_policy(logp, 2)
    direct_loss = full_width_loss(learner.graphdef, batch, old, ref)

    (_, expected_metrics), expected_grads = jax.jit(jax.value_and_grad(direct_loss, has_aux=True))(state.params)
    assert float(expected_metrics["clip_frac"]) > 0 and float(expected_metrics["kl"]) > 0

    new_state, metrics = learner.optimizer_step(state, batch, old, ref, bucket_size=BUCKET)
    _assert_trees_close(new_state.opt_state, expected_grads, rtol=1e-6)  # the recorded gradient
    for name, value in expected_metrics.items():
        np.testing.assert_allclose(float(metrics[name]), float(value), rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(float(metrics["grad_norm"]), float(optax.global_norm(expected_grads)), rtol=1e-6)
    assert int(new_state.step) == 1


def test_masked_positions_get_exactly_zero_logit_gradient():
    """With an identity LM head the logits ARE the final hidden states, so the gradient of the train
    step's loss path w.r.t. the model's hidden states is the gradient w.r.t. the logits."""
    model = tiny_model(seed=2, vocab_size=16, hidden_size=16)
    model.lm_head[...] = jnp.eye(16)
    batch = {k: jnp.asarray(v) for k, v in random_batch(seed=2, n=7, batch_size=8, vocab=16).items()}
    hidden = response_hidden(model, batch, None, parallel.DEFAULT_RULES)
    assert np.array_equal(np.asarray(model.logits(hidden)), np.asarray(hidden))
    old, ref = (-2.0 + np.random.default_rng(seed).normal(size=hidden.shape[:2]).astype(np.float32)
                for seed in (3, 4))
    norm = mini_batch_normalizer(batch["loss_mask"], batch["is_revision"])

    @jax.jit
    def grad_of_logits(logits):  # [B, T, V] -> d loss / d logits, through the train step's loss path
        return jax.grad(lambda x: micro_batch_loss(x, model.lm_head_kernel(), batch, old, ref, norm, STEP)[0])(logits)

    grad = np.asarray(grad_of_logits(hidden))
    mask = np.asarray(batch["loss_mask"])
    assert (~mask).sum() > 0 and np.all(grad[~mask] == 0.0)
    assert np.all(np.abs(grad[mask]).sum(-1) > 0)


def test_garbage_at_masked_positions_changes_nothing(model, learner, batch):
    """Masked targets, padded input ids, and nan / inf old, reference and sampler log-probs outside the
    loss mask leave the step's gradient and metrics unchanged (and finite)."""
    logp = np.asarray(learner.compute_logprobs(learner.init_state(model).params, batch, BUCKET))
    old, ref = _off_policy(logp, 5), _off_policy(logp, 6)
    clean_state, clean = learner.optimizer_step(learner.init_state(model), batch, old, ref, bucket_size=BUCKET)

    rng = np.random.default_rng(7)
    masked, padding = ~batch["loss_mask"], ~batch["attention_mask"]
    dirty = dict(batch)
    dirty["targets"] = np.where(masked, rng.integers(0, 32, masked.shape), batch["targets"]).astype(np.int32)
    dirty["input_ids"] = np.where(padding, rng.integers(0, 32, padding.shape), batch["input_ids"]).astype(np.int32)
    dirty["sampler_logprobs"] = np.where(batch["sampler_mask"], batch["sampler_logprobs"], np.nan).astype(np.float32)
    dirty_old = np.where(masked, -np.inf, old).astype(np.float32)
    dirty_ref = np.where(masked, np.nan, ref).astype(np.float32)
    dirty_state, dirty_metrics = learner.optimizer_step(learner.init_state(model), dirty, dirty_old, dirty_ref,
                                                        bucket_size=BUCKET)

    for a, b in zip(jax.tree.leaves(dirty_state), jax.tree.leaves(clean_state), strict=True):
        assert np.all(np.isfinite(np.asarray(a)))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for name, value in clean.items():
        assert float(dirty_metrics[name]) == float(value), name


def test_first_step_is_on_policy_and_reports_the_sampler_gap(model, learner, batch):
    state = learner.init_state(model)
    old = np.asarray(learner.compute_logprobs(state.params, batch, BUCKET))
    _, metrics = learner.optimizer_step(state, batch, old, old, bucket_size=BUCKET)
    assert float(metrics["ratio_mean"]) == pytest.approx(1.0, abs=1e-5)
    assert float(metrics["ratio_max"]) == pytest.approx(1.0, abs=1e-5)
    assert float(metrics["clip_frac"]) == 0.0
    assert float(metrics["kl"]) == pytest.approx(0.0, abs=1e-6)
    assert float(metrics["revision_weight_mean"]) == pytest.approx(0.5, abs=1e-5)  # f(1) = 1 / (1 + γ)

    # On-policy, Eq. 9: every original token contributes −A, every revision token −A / 2.
    rows = batch["loss_mask"].any(1)
    adv, rev = batch["advantages"], batch["is_revision"]
    expected_pg = -(adv[rows & ~rev].sum() + 0.5 * adv[rows & rev].sum()) / rows.sum()
    assert float(metrics["pg_loss"]) == pytest.approx(expected_pg, rel=1e-5)

    sampler_mask = batch["sampler_mask"]
    assert sampler_mask.sum() > 0
    expected_gap = np.abs(batch["sampler_logprobs"] - old)[sampler_mask].mean()
    assert float(metrics["sampler_logprob_gap"]) == pytest.approx(expected_gap, rel=1e-5)


def test_bf16_compute_tracks_fp32(model, learner, batch):
    """The same step with the model computing in bf16 (fp32 master params) stays close to fp32."""
    bf16 = Learner(tiny_model(dtype="bfloat16"), sgd_recording_gradient(0.1), STEP)
    logp = np.asarray(learner.compute_logprobs(learner.init_state(model).params, batch, BUCKET))
    old, ref = _off_policy(logp, 8), _off_policy(logp, 9)
    state32, metrics32 = learner.optimizer_step(learner.init_state(model), batch, old, ref, bucket_size=BUCKET)
    state16, metrics16 = bf16.optimizer_step(bf16.init_state(model), batch, old, ref, bucket_size=BUCKET)
    assert float(metrics16["loss"]) != float(metrics32["loss"])  # it really ran in bf16
    for name in ("loss", "pg_loss", "kl", "entropy", "grad_norm"):
        np.testing.assert_allclose(float(metrics16[name]), float(metrics32[name]), rtol=2e-2, err_msg=name)
    g16, g32 = (np.concatenate([np.ravel(g) for g in jax.tree.leaves(s.opt_state)]) for s in (state16, state32))
    assert g16 @ g32 / np.linalg.norm(g16) / np.linalg.norm(g32) > 0.999
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state16.params))  # fp32 master params
