"""Drawing one token per row from logits with temperature, top-k and top-p (pure, jittable).

Filters that are off emit no work: top-k uses `lax.top_k` (a partial sort); only top-p without top-k
needs a full sort of the vocabulary. Draws use inverse-CDF sampling (one uniform per row), which costs a
third of `jax.random.categorical`'s Gumbel trick (one random number per vocabulary entry) on CPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sample_token(logits: jax.Array, key: jax.Array, temperature: float, top_k: int, top_p: float):
    """One row: logits [V] (float32) -> (token [], log-prob []).

    The log-prob is that of the token under the temperature-scaled, untruncated distribution (what the
    trainer recomputes); under greedy decoding (temperature 0) it is under the plain softmax.
    """
    if temperature == 0:
        token = jnp.argmax(logits)
        return token, jax.nn.log_softmax(logits)[token]
    scaled = logits / temperature
    if top_k or top_p < 1.0:
        if top_k:
            values, indices = jax.lax.top_k(scaled, min(top_k, scaled.shape[-1]))
        else:
            indices = jnp.argsort(-scaled)
            values = scaled[indices]
        if top_p < 1.0:
            probs = jax.nn.softmax(values)
            mass_before = jnp.cumsum(probs) - probs  # keep the smallest prefix holding >= top_p mass
            values = jnp.where(mass_before < top_p, values, -jnp.inf)
        token = indices[draw_index(key, values)]
    else:
        token = draw_index(key, scaled)
    return token, jax.nn.log_softmax(scaled)[token]


def draw_index(key: jax.Array, logits: jax.Array) -> jax.Array:
    """One index drawn from softmax(logits [V]) by inverse CDF; entries at -inf are never drawn."""
    probs = jax.nn.softmax(logits)
    cdf = jnp.cumsum(probs)
    u = jax.random.uniform(key, dtype=cdf.dtype) * cdf[-1]
    index = jnp.searchsorted(cdf, u, side="right")
    # Rounding can put u at cdf[-1]; fall back to the last index that has probability mass.
    last_positive = logits.shape[-1] - 1 - jnp.argmax(probs[::-1] > 0)
    return jnp.minimum(index, last_positive)


def sample_rows(logits: jax.Array, keys: jax.Array, temperature: float, top_k: int, top_p: float):
    """logits [B, V], keys [B] -> (tokens [B] int32, log-probs [B] float32); each row its own key."""
    tokens, logprobs = jax.vmap(lambda l, k: sample_token(l, k, temperature, top_k, top_p))(logits, keys)
    return tokens.astype(jnp.int32), logprobs.astype(jnp.float32)
