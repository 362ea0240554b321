"""The policy network: one Flax NNX causal decoder for Llama 3.x, SmolLM2, Qwen2/2.5 and Qwen3.

Pre-norm blocks: x += Attn(RMSNorm(x)); x += SwiGLU(RMSNorm(x)). Attention is grouped-query with RoPE
(rotate-half convention, optional Llama-3 frequency scaling), optional q/k/v biases (Qwen2) and optional
per-head RMSNorm on q and k (Qwen3). The layers' parameters are stacked on a leading "layers" axis and the
forward pass scans over them, so compile time does not grow with depth.

Every parameter carries logical axis names in its `out_sharding` metadata (eager sharding off): "vocab",
"embed", "q_heads", "kv_heads", "head_dim", "mlp", "layers". The sharding code maps them onto a mesh.

Shapes: B batch, T new tokens, S key/value slots, D hidden, N query heads, K key/value heads, H head_dim,
F intermediate, V vocab, L layers.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from herl_jax.models.config import ModelConfig
from herl_jax.models.kv_cache import KVCache

INIT_STDDEV = 0.02  # HF's `initializer_range` default, for random-weight models


def _param(rngs: nnx.Rngs | None, shape, axes, dtype, ones: bool = False) -> nnx.Param:
    """A parameter with logical axis names; random normal(0.02) unless `ones` (norm weights)."""
    if ones:
        value = jnp.ones(shape, dtype)
    elif rngs is None:
        value = jnp.zeros(shape, dtype)
    else:
        value = (INIT_STDDEV * jax.random.normal(rngs.params(), shape, jnp.float32)).astype(dtype)
    return nnx.Param(value, out_sharding=tuple(axes), eager_sharding=False)


def rope_inverse_frequencies(cfg: ModelConfig) -> np.ndarray:
    """Per-pair rotation frequencies [H/2] (float32), with Llama-3 scaling when configured."""
    exponents = np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta**exponents)
    s = cfg.rope_scaling
    if s is not None:
        # Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
        wavelength = 2 * math.pi / inv_freq
        long_wave = s.original_max_position_embeddings / s.low_freq_factor
        short_wave = s.original_max_position_embeddings / s.high_freq_factor
        blend = (s.original_max_position_embeddings / wavelength - s.low_freq_factor) / (
            s.high_freq_factor - s.low_freq_factor
        )
        blended = (1 - blend) * inv_freq / s.factor + blend * inv_freq
        inv_freq = np.where(
            wavelength > long_wave, inv_freq / s.factor, np.where(wavelength < short_wave, inv_freq, blended)
        )
    return inv_freq.astype(np.float32)


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: np.ndarray) -> jax.Array:
    """Rotates x [B, T, heads, H] by per-row positions [B, T] (rotate-half pairing, as in HF)."""
    angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, H/2]
    cos = jnp.cos(angles)[:, :, None, :]
    sin = jnp.sin(angles)[:, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x.dtype)


class RMSNorm(nnx.Module):
    """y = x / rms(x) * weight, normalized in float32 (as HF does)."""

    def __init__(self, dim: int, eps: float, axis: str, param_dtype):
        self.eps = eps
        self.weight = _param(None, (dim,), (axis,), param_dtype, ones=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        xf = x.astype(jnp.float32)
        normed = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + self.eps)
        return normed.astype(x.dtype) * self.weight[...].astype(x.dtype)


class Attention(nnx.Module):
    """Grouped-query self-attention with RoPE, writing to and reading from an optional KV cache."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs | None):
        d, n, k, h, pd = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.param_dtype
        self.cfg = cfg
        self.q_proj = _param(rngs, (d, n, h), ("embed", "q_heads", "head_dim"), pd)
        self.k_proj = _param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), pd)
        self.v_proj = _param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), pd)
        self.o_proj = _param(rngs, (n, h, d), ("q_heads", "head_dim", "embed"), pd)
        if cfg.qkv_bias:
            self.q_bias = _param(None, (n, h), ("q_heads", "head_dim"), pd)
            self.k_bias = _param(None, (k, h), ("kv_heads", "head_dim"), pd)
            self.v_bias = _param(None, (k, h), ("kv_heads", "head_dim"), pd)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(h, cfg.rms_norm_eps, "head_dim", pd)
            self.k_norm = RMSNorm(h, cfg.rms_norm_eps, "head_dim", pd)

    def __call__(self, x, positions, mask, inv_freq, cache_kv=None, cache_index=None):
        """x [B,T,D], positions [B,T], mask [B,1,T,S] bool.

        cache_kv: None, or (k_all, v_all [L,B,S,K,H], layer []) to write this call's T slots at
        `cache_index` and attend over all S slots of `layer`; or (k, v [B,S,K,H], None): this layer's own
        buffers.
        Returns (out [B,T,D], (k, v)): the updated cache buffers, or this call's keys/values [B,T,K,H].
        """
        cfg, dt = self.cfg, x.dtype
        q = jnp.einsum("btd,dnh->btnh", x, self.q_proj[...].astype(dt))
        k = jnp.einsum("btd,dkh->btkh", x, self.k_proj[...].astype(dt))
        v = jnp.einsum("btd,dkh->btkh", x, self.v_proj[...].astype(dt))
        if cfg.qkv_bias:
            q = q + self.q_bias[...].astype(dt)
            k = k + self.k_bias[...].astype(dt)
            v = v + self.v_bias[...].astype(dt)
        if cfg.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q = apply_rope(q, positions, inv_freq)
        k = apply_rope(k, positions, inv_freq)
        if cache_kv is not None:
            # Write this call's keys/values into the all-layer cache in place, then attend over this
            # layer's slots read straight from it (no per-layer copy of the cache).
            k_all, v_all, layer = cache_kv
            if layer is None:  # this layer's own buffers
                start = (0, cache_index, 0, 0)
                k_all = jax.lax.dynamic_update_slice(k_all, k.astype(k_all.dtype), start)
                v_all = jax.lax.dynamic_update_slice(v_all, v.astype(v_all.dtype), start)
                k, v = k_all.astype(dt), v_all.astype(dt)
            else:
                start = (layer, 0, cache_index, 0, 0)
                k_all = jax.lax.dynamic_update_slice(k_all, k[None].astype(k_all.dtype), start)
                v_all = jax.lax.dynamic_update_slice(v_all, v[None].astype(v_all.dtype), start)
                k = jax.lax.dynamic_index_in_dim(k_all, layer, keepdims=False).astype(dt)
                v = jax.lax.dynamic_index_in_dim(v_all, layer, keepdims=False).astype(dt)
            new_cache = (k_all, v_all)
        else:
            new_cache = (k, v)
        if cache_kv is not None and _attention_impl(cfg) == "xla":
            out = _cached_attention(q, k, v, mask)
        else:
            out = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation=_attention_impl(cfg))
        out = jnp.einsum("btnh,nhd->btd", out, self.o_proj[...].astype(dt))
        return out, new_cache


class MLP(nnx.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs | None):
        d, f, pd = cfg.hidden_size, cfg.intermediate_size, cfg.param_dtype
        self.gate_proj = _param(rngs, (d, f), ("embed", "mlp"), pd)
        self.up_proj = _param(rngs, (d, f), ("embed", "mlp"), pd)
        self.down_proj = _param(rngs, (f, d), ("mlp", "embed"), pd)

    def __call__(self, x: jax.Array) -> jax.Array:
        dt = x.dtype
        gate = jax.nn.silu(x @ self.gate_proj[...].astype(dt))
        return (gate * (x @ self.up_proj[...].astype(dt))) @ self.down_proj[...].astype(dt)


class DecoderLayer(nnx.Module):
    """One pre-norm transformer block."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs | None):
        self.input_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, "embed", cfg.param_dtype)
        self.attn = Attention(cfg, rngs)
        self.post_attn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, "embed", cfg.param_dtype)
        self.mlp = MLP(cfg, rngs)

    def __call__(self, x, positions, mask, inv_freq, cache_kv=None, cache_index=None):
        attn_out, kv = self.attn(self.input_norm(x), positions, mask, inv_freq, cache_kv, cache_index)
        x = x + attn_out
        return x + self.mlp(self.post_attn_norm(x)), kv


class Decoder(nnx.Module):
    """Causal LM. `model(input_ids, attention_mask)` -> float32 logits [B, T, V] for left-padded batches.

    With `cache=KVCache(...)` it appends the new tokens to the cache and returns (logits, new_cache); the
    sampler uses this for prefill and decode. Padding tokens (attention_mask 0) are never attended to and
    do not advance a row's positions, so a left-padded row computes exactly what it would alone.
    """

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs | None = None):
        """`rngs=None` builds zero-filled weights (to be overwritten by a checkpoint)."""
        self.cfg = cfg
        pd = cfg.param_dtype
        self.embed = _param(rngs, (cfg.vocab_size, cfg.hidden_size), ("vocab", "embed"), pd)

        @nnx.vmap(in_axes=0, out_axes=0, axis_size=cfg.num_layers, transform_metadata={nnx.PARTITION_NAME: "layers"})
        def make_layers(layer_rngs):
            return DecoderLayer(cfg, layer_rngs)

        self.layers = make_layers(rngs.fork(split=cfg.num_layers) if rngs is not None else None)
        self.final_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, "embed", pd)
        if not cfg.tie_word_embeddings:
            self.lm_head = _param(rngs, (cfg.hidden_size, cfg.vocab_size), ("embed", "vocab"), pd)

    def lm_head_kernel(self) -> jax.Array:
        """Output projection [D, V] (the transposed embedding when tied)."""
        return self.embed[...].T if self.cfg.tie_word_embeddings else self.lm_head[...]

    def logits(self, hidden: jax.Array) -> jax.Array:
        """float32 logits [..., V] from final hidden states [..., D]."""
        w = self.lm_head_kernel().astype(hidden.dtype)
        return jnp.einsum("...d,dv->...v", hidden, w, preferred_element_type=jnp.float32)

    def layer_states(self) -> tuple[nnx.State, ...]:
        """Each layer's parameters as arrays of its own (copies of the stacked layers' slices).

        For decode loops: computed once before the loop and passed as `hidden_states(..., layers=)`,
        they let every step read each layer's weights directly; the layer scan instead slices the stacked
        weights on every step, which XLA materializes as copies (~20% of a CPU decode step)."""
        _, stacked = nnx.split(self.layers)
        return tuple(jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(self.cfg.num_layers))

    def hidden_states(self, input_ids, attention_mask, positions=None, cache: KVCache | None = None,
                      layers: Sequence[nnx.State] | None = None):
        """Final normed hidden states [B, T, D] (and the updated cache when one is given).

        With `layers` (from `layer_states()`) and a per-layer `cache` (`KVCache.per_layer()`) the layers run
        one after another, unrolled, each on its own weights and cache buffers; otherwise a scan runs
        them over the stacked weights (compile time independent of depth)."""
        cfg = self.cfg
        attention_mask = attention_mask.astype(jnp.int32)
        t = input_ids.shape[1]
        if cache is None:
            key_valid = attention_mask.astype(bool)
            slot = jnp.arange(t)
            start_len = jnp.zeros((input_ids.shape[0],), jnp.int32)
        else:
            key_valid = jax.lax.dynamic_update_slice(cache.key_valid, attention_mask.astype(bool), (0, cache.index))
            slot = cache.index + jnp.arange(t)
            start_len = cache.lengths
        if positions is None:
            positions = jnp.maximum(start_len[:, None] + jnp.cumsum(attention_mask, axis=1) - 1, 0)
        key_slot = jnp.arange(key_valid.shape[1])
        causal = key_slot[None, :] <= slot[:, None]  # [T, S]
        mask = causal[None, None] & key_valid[:, None, None, :]  # [B, 1, T, S]

        inv_freq = rope_inverse_frequencies(cfg)
        x = self.embed[...].astype(cfg.dtype)[input_ids]
        index = None if cache is None else cache.index

        # Scan over the stacked layers with plain jax.lax.scan on the layers' state, so the decoder also
        # runs inside other JAX control flow (the sampler's while_loop) without NNX trace-level checks.
        layers_graph, layers_state = nnx.split(self.layers)

        def run_layer(layer_state, x, kv=None):
            return nnx.merge(layers_graph, layer_state)(x, positions, mask, inv_freq, kv, index)

        if cfg.remat:
            run_layer = jax.checkpoint(run_layer)

        if cache is None:
            x, _ = jax.lax.scan(lambda x, layer_state: (run_layer(layer_state, x)[0], None), x, layers_state)
            return self.final_norm(x), None

        if cache.is_per_layer != (layers is not None):
            raise ValueError("give layers= (Decoder.layer_states()) exactly when the cache is per layer "
                             "(KVCache.per_layer())")
        if layers is not None:
            k_all, v_all = [], []
            for layer_state, k, v in zip(layers, cache.k, cache.v, strict=True):
                x, (k, v) = run_layer(layer_state, x, (k, v, None))
                k_all.append(k)
                v_all.append(v)
            k_all, v_all = tuple(k_all), tuple(v_all)
        else:
            # The whole cache rides in the scan carry and each layer writes only its T new slots in place;
            # stacking per-layer outputs instead would copy the entire cache on every decode step.
            def layer_with_cache(carry, xs):
                x, k_all, v_all = carry
                layer, layer_state = xs
                x, (k_all, v_all) = run_layer(layer_state, x, (k_all, v_all, layer))
                return (x, k_all, v_all), None

            layer_ids = jnp.arange(cfg.num_layers)
            (x, k_all, v_all), _ = jax.lax.scan(layer_with_cache, (x, cache.k, cache.v),
                                                (layer_ids, layers_state))
        new_cache = KVCache(
            k=k_all,
            v=v_all,
            key_valid=key_valid,
            lengths=start_len + attention_mask.sum(axis=1),
            index=cache.index + t,
        )
        return self.final_norm(x), new_cache

    def __call__(self, input_ids, attention_mask, positions=None, cache: KVCache | None = None,
                 layers: Sequence[nnx.State] | None = None):
        hidden, new_cache = self.hidden_states(input_ids, attention_mask, positions, cache, layers)
        logits = self.logits(hidden)
        return logits if cache is None else (logits, new_cache)


def _attention_impl(cfg: ModelConfig) -> str:
    """Resolves "auto": cuDNN's fused kernel on GPU in half precision (10x XLA there), XLA elsewhere."""
    if cfg.attention_impl != "auto":
        return cfg.attention_impl
    on_gpu = jax.default_backend() == "gpu"
    return "cudnn" if on_gpu and cfg.dtype in ("bfloat16", "float16") else "xla"


def _cached_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Grouped-query attention over cache slots: q [B,T,N,H], k/v [B,S,K,H], mask [B,1,T,S] -> [B,T,N,H].

    The decode path's XLA attention: query heads grouped per key/value head (N = K * G) so the cache is
    not repeated, scores and softmax in float32. On CPU it reads the cache about 10% faster per step than
    `jax.nn.dot_product_attention`'s XLA form.
    """
    b, t, n, h = q.shape
    groups = q.reshape(b, t, k.shape[2], n // k.shape[2], h)
    scores = jnp.einsum("btkgh,bskh->bkgts", groups, k, preferred_element_type=jnp.float32) / np.sqrt(h)
    scores = jnp.where(mask[:, :, None], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    return jnp.einsum("bkgts,bskh->btkgh", probs, v).reshape(b, t, n, h)
