"""The key/value cache the decoder appends to during prefill and decode."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from herl_jax.models.config import ModelConfig


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    """Per-layer keys and values in fixed-size slot buffers, plus which slots hold real tokens.

    k, v:       [L, B, S, K, H]  cached keys / values (slot j of row b); or, after `per_layer()`,
                                 tuples of L arrays [B, S, K, H]
    key_valid:  [B, S] bool      slot holds a real (non-padding) token
    lengths:    [B] int32        real tokens seen so far per row (the next token's RoPE position)
    index:      [] int32         next slot to write; the same for all rows (prompts are left-padded)
    """

    k: jax.Array
    v: jax.Array
    key_valid: jax.Array
    lengths: jax.Array
    index: jax.Array

    # Logical axis names, for the sharding rules.
    KV_AXES = ("layers", "batch", "cache_seq", "kv_heads", "head_dim")
    LAYER_KV_AXES = KV_AXES[1:]  # one layer's keys or values in the per-layer form
    MASK_AXES = ("batch", "cache_seq")

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, max_len: int, dtype=None) -> "KVCache":
        """An empty cache with room for `max_len` slots per row, in the compute dtype by default."""
        shape = (cfg.num_layers, batch, max_len, cfg.num_kv_heads, cfg.head_dim)
        dtype = dtype or cfg.dtype
        return cls(
            k=jnp.zeros(shape, dtype),
            v=jnp.zeros(shape, dtype),
            key_valid=jnp.zeros((batch, max_len), bool),
            lengths=jnp.zeros((batch,), jnp.int32),
            index=jnp.zeros((), jnp.int32),
        )

    @property
    def is_per_layer(self) -> bool:
        return isinstance(self.k, tuple)

    @property
    def max_len(self) -> int:
        return self.k[0].shape[1] if self.is_per_layer else self.k.shape[2]

    def per_layer(self) -> "KVCache":
        """The same cache with one buffer per layer. A decode loop that runs the layers one by one
        (`Decoder.hidden_states(..., layers=...)`) then writes each layer's buffer in place."""
        if self.is_per_layer:
            return self

        def split(x):
            return tuple(x[i] for i in range(x.shape[0]))

        return dataclasses.replace(self, k=split(self.k), v=split(self.v))
