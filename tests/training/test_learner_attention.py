"""The learner's right-padded forward with attention by causal mask type and row lengths (the form cuDNN
gets) against the dense-mask forward, both through XLA on CPU: same real-token outputs, log-probs and
gradients, including an all-padding row."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from herl_jax.models import decoder
from herl_jax.learner import Learner
from tests.training.tiny import BUCKET, STEP, sgd_recording_gradient, tiny_model

LENGTHS = (16, 11, 1, 0, 6, 15)  # right-padded rows of 16 columns; row 3 is all padding


@pytest.fixture
def lengths_form(monkeypatch):
    """Right-padded forwards take the lengths form whatever the implementation (on CPU: XLA's)."""
    monkeypatch.setattr(decoder, "_lengths_form", lambda impl: True)


def _right_padded(seed: int):
    rng = np.random.default_rng(seed)
    real = np.arange(16)[None, :] < np.array(LENGTHS)[:, None]
    ids = np.where(real, rng.integers(1, 32, real.shape), 0).astype(np.int32)
    positions = np.maximum(np.cumsum(real, axis=1) - 1, 0).astype(np.int32)
    return jnp.asarray(ids), jnp.asarray(real), jnp.asarray(positions)


def _hidden_and_gradient(model, ids, real, positions):
    """Final hidden states [B, T, D] of the right-padded forward, and the parameters' gradient of a random
    projection of the real tokens' states (padding positions masked out, as the loss masks them)."""
    graphdef, params = nnx.split(model, nnx.Param)
    weights = jnp.asarray(np.random.default_rng(1).normal(size=(*ids.shape, model.cfg.hidden_size)), jnp.float32)

    def loss(params):
        hidden, _ = nnx.merge(graphdef, params).hidden_states(ids, real, positions, right_padded=True)
        return jnp.where(real[..., None], hidden * weights, 0.0).sum(), hidden

    (_, hidden), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return np.asarray(hidden), grads


def test_lengths_form_equals_the_dense_mask(monkeypatch):
    """float32, matmuls at full precision: real tokens' states and the gradient agree to rounding."""
    model = tiny_model(seed=3, num_heads=4, num_kv_heads=2)  # grouped-query: 2 query heads per key head
    ids, real, positions = _right_padded(seed=4)
    dense_hidden, dense_grads = _hidden_and_gradient(model, ids, real, positions)
    monkeypatch.setattr(decoder, "_lengths_form", lambda impl: True)
    hidden, grads = _hidden_and_gradient(model, ids, real, positions)

    real = np.asarray(real)
    assert np.all(np.isfinite(hidden))  # padding positions too, the all-padding row included
    np.testing.assert_allclose(hidden[real], dense_hidden[real], rtol=0, atol=1e-6)
    for got, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(dense_grads), strict=True):
        expected = np.asarray(expected)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    # The forms really differ where nothing reads them: padding positions.
    assert not np.allclose(hidden[~real], dense_hidden[~real])


@pytest.mark.parametrize("bucket_size", [BUCKET // 2, BUCKET])  # trimmed widths, or all at full width
def test_learner_lengths_form_equals_the_dense_mask(model, learner, batch, lengths_form, bucket_size):
    """Old log-probs on every loss token, the step's metrics and its recorded gradient; the batch's last
    row is a filler row (all padding) and micro-batches trimmed to their rows' width are covered."""
    assert not batch["attention_mask"][-1].any()
    lengths = Learner(model, sgd_recording_gradient(0.1), STEP)  # traced under the patch
    state = learner.init_state(model)
    expected_logp = np.asarray(learner.compute_logprobs(state.params, batch, bucket_size))
    logp = np.asarray(lengths.compute_logprobs(state.params, batch, bucket_size))
    loss_mask = batch["loss_mask"]
    np.testing.assert_allclose(logp[loss_mask], expected_logp[loss_mask], rtol=0, atol=2e-6)

    old = np.where(loss_mask, expected_logp, 0.0).astype(np.float32)
    expected_state, expected = learner.optimizer_step(learner.init_state(model), batch, old, old, bucket_size=bucket_size)
    got_state, got = lengths.optimizer_step(lengths.init_state(model), batch, old, old, bucket_size=bucket_size)
    for name, value in expected.items():
        np.testing.assert_allclose(float(got[name]), float(value), rtol=1e-5, atol=1e-6, err_msg=name)
    for a, e in zip(jax.tree.leaves(got_state.opt_state), jax.tree.leaves(expected_state.opt_state), strict=True):
        e = np.asarray(e)
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-5, atol=1e-6 * np.abs(e).max())
