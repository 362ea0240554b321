"""The key/value cache the decoder appends to during prefill and decode."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from herl_jax.models.config import ModelConfig


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    """Keys and values in fixed-size slot buffers, one buffer per layer, plus which slots hold real tokens.

    k, v:       tuples of L arrays [B, S, K, H], cached keys / values (slot j of row b); one buffer per
                layer, so a decode loop running the layers one by one writes each in place
    key_valid:  [B, S] bool      slot holds a real (non-padding) token
    lengths:    [B] int32        real tokens seen so far per row (the next token's RoPE position)
    index:      [B] int32        next slot to write in each row (rows of a decode batch may have started
                                 at different times, so each row has its own)
    """

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]
    key_valid: jax.Array
    lengths: jax.Array
    index: jax.Array

    # Logical axis names, for the sharding rules: all layers' keys or values (the memory planner sizes them
    # so), one layer's buffer, and the slot mask.
    KV_AXES = ("layers", "batch", "cache_seq", "kv_heads", "head_dim")
    LAYER_KV_AXES = KV_AXES[1:]
    MASK_AXES = ("batch", "cache_seq")

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, max_len: int, dtype=None) -> "KVCache":
        """An empty cache with room for `max_len` slots per row, in the compute dtype by default."""
        shape = (batch, max_len, cfg.num_kv_heads, cfg.head_dim)
        dtype = dtype or cfg.dtype
        return cls(
            k=tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)),
            v=tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)),
            key_valid=jnp.zeros((batch, max_len), bool),
            lengths=jnp.zeros((batch,), jnp.int32),
            index=jnp.zeros((batch,), jnp.int32),
        )

    @property
    def max_len(self) -> int:
        return self.k[0].shape[1]
