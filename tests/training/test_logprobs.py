"""Chunked per-token log-probs against a direct float64 numpy log-softmax, and their memory bound."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from herl_jax.learner.logprobs import token_logprobs


def _numpy_reference(hidden, lm_head, targets, temperature):
    logits = np.einsum("btd,dv->btv", hidden.astype(np.float64), lm_head.astype(np.float64)) / temperature
    logits -= logits.max(-1, keepdims=True)
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    logp = np.take_along_axis(logp_all, targets[..., None], -1)[..., 0]
    entropy = -(np.exp(logp_all) * logp_all).sum(-1)
    return logp, entropy


@pytest.mark.parametrize("chunk_size", [4, 13, 64])  # ragged last chunk, exact fit, larger than T
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_matches_float64_log_softmax(chunk_size, temperature):
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(2, 13, 8)).astype(np.float32)
    lm_head = rng.normal(size=(8, 50)).astype(np.float32)
    targets = rng.integers(0, 50, size=(2, 13))
    logp, entropy = token_logprobs(jnp.asarray(hidden), jnp.asarray(lm_head), jnp.asarray(targets),
                                   temperature=temperature, chunk_size=chunk_size, with_entropy=True)
    ref_logp, ref_entropy = _numpy_reference(hidden, lm_head, targets, temperature)
    assert logp.shape == entropy.shape == (2, 13) and logp.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(logp), ref_logp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(entropy), ref_entropy, rtol=1e-5, atol=1e-5)
    assert token_logprobs(jnp.asarray(hidden), jnp.asarray(lm_head), jnp.asarray(targets),
                          chunk_size=chunk_size)[1] is None


def test_bf16_hidden_states_give_fp32_log_probs():
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(2, 8, 16)).astype(np.float32)
    lm_head = (rng.normal(size=(16, 40)) * 0.3).astype(np.float32)
    targets = rng.integers(0, 40, size=(2, 8))
    logp, _ = token_logprobs(jnp.asarray(hidden, jnp.bfloat16), jnp.asarray(lm_head, jnp.bfloat16),
                             jnp.asarray(targets), chunk_size=4)
    ref_logp, _ = _numpy_reference(hidden, lm_head, targets, 1.0)
    assert logp.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(logp), ref_logp, atol=0.1)  # bf16 inputs, fp32 accumulation


def test_gradient_never_holds_full_logits():
    """Forward + backward temp memory stays far below one [B, T, V] fp32 logits tensor."""
    batch, length, dim, vocab = 2, 256, 16, 4096
    hidden = jnp.zeros((batch, length, dim))
    lm_head = jnp.zeros((dim, vocab))
    targets = jnp.zeros((batch, length), jnp.int32)

    def loss(hidden, lm_head):
        logp, entropy = token_logprobs(hidden, lm_head, targets, chunk_size=8, with_entropy=True)
        return logp.sum() + entropy.sum()

    compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(hidden, lm_head).compile()
    full_logits_bytes = batch * length * vocab * 4
    assert compiled.memory_analysis().temp_size_in_bytes < full_logits_bytes / 4
