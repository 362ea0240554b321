"""The policy network: one Flax NNX causal decoder for Llama 3.x, SmolLM2, Qwen2/2.5 and Qwen3.

Pre-norm blocks: x += Attn(RMSNorm(x)); x += SwiGLU(RMSNorm(x)). Attention is grouped-query with RoPE
(rotate-half convention, optional Llama-3 frequency scaling), optional q/k/v biases (Qwen2) and optional
per-head RMSNorm on q and k (Qwen3). The layers' parameters are stacked on a leading "layers" axis and the
forward pass scans over them, so compile time does not grow with depth; a pass with a KV cache (the
sampler's prefill and decode) runs them unrolled on per-layer copies and per-layer cache buffers.

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
from jax.sharding import Mesh

from herl_jax import parallel
from herl_jax.models.config import ModelConfig
from herl_jax.models.kv_cache import KVCache

INIT_STDDEV = 0.02  # HF's `initializer_range` default, for random-weight models

# Logical axes of the hidden states between layers [B, T, D]: rows split over the batch axes, the hidden
# size whole. Pinned at every layer boundary: otherwise the embedding lookup hands its table's hidden-dim
# sharding to the activations, and every matmul all-reduces activations instead of gathering weights.
ACTIVATION_AXES = ("batch", "seq", None)


def _param(rngs: nnx.Rngs | None, shape, axes, dtype, ones: bool = False) -> nnx.Param:
    """A parameter with logical axis names; random normal(0.02) unless `ones` (norm weights)."""
    if ones:
        value = jnp.ones(shape, dtype)
    elif rngs is None:
        value = jnp.zeros(shape, dtype)
    else:
        value = (INIT_STDDEV * jax.random.normal(rngs.params(), shape, jnp.float32)).astype(dtype)
    return nnx.Param(value, out_sharding=tuple(axes), eager_sharding=False)


def write_rows(buffer: jax.Array, update: jax.Array, start: jax.Array) -> jax.Array:
    """buffer [B, S, ...] with each row b's update [B, T, ...] written at slots start[b] .. start[b] + T - 1.

    A per-row dynamic_update_slice: a row's slots stay on the device that holds the row, so a sharded
    cache is written with no communication (a scatter at [rows, slots] compiles to gathers of the whole
    buffer). A start past S - T is clamped to S - T (only idle rows get there; their slots are unused)."""
    def one_row(row, new, at):
        return jax.lax.dynamic_update_slice_in_dim(row, new, at, axis=0)

    return jax.vmap(one_row)(buffer, update, start)


def outside_layers(state: nnx.State) -> nnx.State:
    """The entries of a Decoder's state outside its layer stack: the embedding, final norm and LM head."""
    return nnx.State({name: value for name, value in state.items() if name != "layers"})


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

    def __call__(self, x, positions, mask, inv_freq, cache_kv=None, write_slots=None, lengths=None):
        """x [B,T,D], positions [B,T], mask [B,1,T,W] bool, or None with `lengths`.

        cache_kv: None, or this layer's cache buffers (k, v [B,S,K,H]): this call's keys/values are written
        at `write_slots` [B,T] (consecutive in each row) and the queries attend over the first W slots (the
        mask's width), so a decode step reads only the part of the cache that holds keys.
        lengths: [B] int32 (>= 1), no cache: row b's first lengths[b] tokens attend causally among
        themselves, and its later (padding) positions output zeros (`Decoder.hidden_states(right_padded=)`).
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
            # Write each row's new keys/values at its own slots, in place, then read the window.
            k_buf, v_buf = cache_kv
            k_buf = write_rows(k_buf, k.astype(k_buf.dtype), write_slots[:, 0])
            v_buf = write_rows(v_buf, v.astype(v_buf.dtype), write_slots[:, 0])
            window = mask.shape[-1]
            # No copy of its own: XLA (CPU) fuses this slice into the transposes to [B,K,W,H] that the grouped
            # dots need anyway, so they move W slots, not S (attending over the whole buffer doubles the temp
            # at W = S/2). A [B,K,S,H] cache trades them for a slice copy as large (measured: same temp).
            k, v = k_buf[:, :window].astype(dt), v_buf[:, :window].astype(dt)
            new_cache = (k_buf, v_buf)
        else:
            new_cache = (k, v)
        impl = _attention_impl(cfg)
        if lengths is not None:
            out = jax.nn.dot_product_attention(q, k, v, is_causal=True, query_seq_lengths=lengths,
                                               key_value_seq_lengths=lengths, implementation=impl)
        elif cache_kv is not None and impl == "xla":
            out = _cached_attention(q, k, v, mask)
        else:
            out = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation=impl)
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

    def __call__(self, x, positions, mask, inv_freq, cache_kv=None, write_slots=None, lengths=None):
        attn_out, kv = self.attn(self.input_norm(x), positions, mask, inv_freq, cache_kv, write_slots, lengths)
        x = x + attn_out
        return x + self.mlp(self.post_attn_norm(x)), kv


class Decoder(nnx.Module):
    """Causal LM. `model(input_ids, attention_mask)` -> float32 logits [B, T, V] for padded batches.

    With `cache=KVCache(...)` it appends the new tokens to the cache and returns (logits, new_cache); the
    sampler uses this for prefill and decode. Padding tokens (attention_mask 0) are never attended to and
    do not advance a row's positions, so a padded row's real tokens compute exactly what they would alone
    (left-padded, as the sampler's prompts, or, declared with `right_padded=True`, as the learner's rows).
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
        """float32 logits [..., V] from final hidden states [..., D] (bf16 ones would be off by up to ~0.1:
        `token_logprobs`)."""
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
                      layers: Sequence[nnx.State] | None = None, window: int | None = None, *,
                      right_padded: bool = False, mesh: Mesh | None = None,
                      rules: parallel.Rules = parallel.DEFAULT_RULES):
        """Final normed hidden states [B, T, D] (and the updated cache when one is given).

        Without a cache a scan runs the layers over the stacked weights (compile time independent of depth).
        With one, the layers run one after another, unrolled, each on its own weights (`layers`, from
        `layer_states()`; computed here when not given) and cache buffers; each row's T new tokens go to
        its slots `cache.index[b]` onward, and attention reads only the first `window` slots (default all:
        every row's keys must lie in them). On a `mesh`, the hidden states between layers are laid out by
        ACTIVATION_AXES under `rules`.

        `right_padded` (no cache): the caller declares every row its real tokens first, then padding
        (attention_mask [B, T] a prefix of ones), as the learner's batches are. cuDNN attention then gets a
        causal mask type and per-row lengths instead of a dense [B, 1, T, T] mask, so it skips the tiles
        above the diagonal and past each row's length (`_lengths_form`). Real tokens' outputs are those of
        the dense mask; padding positions' outputs differ (and are not to be read)."""
        cfg = self.cfg
        attention_mask = attention_mask.astype(jnp.int32)
        t = input_ids.shape[1]
        lengths = _causal_lengths(cfg, attention_mask, right_padded, cache)
        slot, key_valid, start_len = _key_slots(attention_mask, cache)
        if positions is None:
            positions = jnp.maximum(start_len[:, None] + jnp.cumsum(attention_mask, axis=1) - 1, 0)
        window = key_valid.shape[1] if window is None else window
        mask = _dense_mask(slot, key_valid, window) if lengths is None else None

        inv_freq = rope_inverse_frequencies(cfg)
        def pin(x):
            return parallel.constrain(x, ACTIVATION_AXES, mesh, rules)

        x = pin(self.embed[...].astype(cfg.dtype)[input_ids])

        # Plain jax.lax.scan / merge on the layers' state, so the decoder also runs inside other JAX control
        # flow (the sampler's while_loop) without NNX trace-level checks.
        layers_graph, layers_state = nnx.split(self.layers)

        def run_layer(layer_state, x, kv=None):
            x, kv = nnx.merge(layers_graph, layer_state)(x, positions, mask, inv_freq, kv, slot, lengths)
            return pin(x), kv

        if cfg.remat:
            run_layer = jax.checkpoint(run_layer)

        if cache is None:
            x, _ = jax.lax.scan(lambda x, layer_state: (run_layer(layer_state, x)[0], None), x, layers_state)
            return self.final_norm(x), None

        k_all, v_all = [], []
        layers = self.layer_states() if layers is None else layers
        for layer_state, k, v in zip(layers, cache.k, cache.v, strict=True):
            x, (k, v) = run_layer(layer_state, x, (k, v))
            k_all.append(k)
            v_all.append(v)
        new_cache = KVCache(k=tuple(k_all), v=tuple(v_all), key_valid=key_valid,
                            lengths=start_len + attention_mask.sum(axis=1), index=cache.index + t)
        return self.final_norm(x), new_cache

    def __call__(self, input_ids, attention_mask, positions=None, cache: KVCache | None = None,
                 layers: Sequence[nnx.State] | None = None, window: int | None = None, *,
                 mesh: Mesh | None = None, rules: parallel.Rules = parallel.DEFAULT_RULES):
        hidden, new_cache = self.hidden_states(input_ids, attention_mask, positions, cache, layers, window,
                                               mesh=mesh, rules=rules)
        logits = self.logits(hidden)
        return logits if cache is None else (logits, new_cache)


def _attention_impl(cfg: ModelConfig) -> str:
    """Resolves "auto": cuDNN's fused kernel on GPU in half precision (10x XLA there), XLA elsewhere."""
    if cfg.attention_impl != "auto":
        return cfg.attention_impl
    on_gpu = jax.default_backend() == "gpu"
    return "cudnn" if on_gpu and cfg.dtype in ("bfloat16", "float16") else "xla"


def _causal_lengths(cfg: ModelConfig, attention_mask, right_padded: bool, cache) -> jax.Array | None:
    """Per-row lengths [B] for attention by causal mask type and lengths, where the caller declares its rows
    right-padded and the implementation takes that form (`_lengths_form`); else None: the dense mask.

    An all-padding row (the collate's filler rows) gets length 1, so no kernel is asked for an empty
    softmax: its position 0 attends to its own padding key, a finite output that, like every padding
    position's, nothing reads."""
    if not right_padded:
        return None
    if cache is not None:
        raise ValueError("right_padded is for a forward without a cache")
    return jnp.maximum(attention_mask.sum(axis=1), 1) if _lengths_form(_attention_impl(cfg)) else None


def _dense_mask(slot, key_valid, window: int):
    """Attention mask [B, 1, T, W]: query t (in cache slot `slot[b, t]`) sees the valid keys up to its own slot
    among the first `window`."""
    causal = jnp.arange(window)[None, None, :] <= slot[:, :, None]  # [B or 1, T, W]
    return causal[:, None] & key_valid[:, None, None, :window]


def _key_slots(attention_mask, cache: KVCache | None):
    """(slot [B or 1, T]: the cache slot of each new token, key_valid [B, S]: which slots hold keys,
    start_len [B]: tokens each row had before) for new tokens with attention_mask [B, T] (int32)."""
    batch, t = attention_mask.shape
    if cache is None:
        return jnp.arange(t)[None, :], attention_mask.astype(bool), jnp.zeros((batch,), jnp.int32)
    slot = cache.index[:, None] + jnp.arange(t)
    return slot, write_rows(cache.key_valid, attention_mask.astype(bool), cache.index), cache.lengths


def _lengths_form(impl: str) -> bool:
    """Whether right-padded rows attend by a causal mask type and per-row lengths instead of the dense mask:
    with cuDNN, whose kernel then skips the masked tiles (given a dense mask it adds it as a bias to every
    tile). XLA would build the same mask from them and compute the same scores, so it keeps the dense mask
    and the CPU path stays bit for bit as it was."""
    return impl == "cudnn"


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
