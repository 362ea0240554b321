"""How our parameter tree maps onto Hugging Face tensor names and shapes (used by load and export).

HF stores a linear layer as weight [out, in]; we store kernels [in..., out...] with heads split out,
e.g. q_proj [D, N, H] and o_proj [N, H, D], and per-layer tensors stacked on a leading layer axis.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from herl_jax.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One parameter: its path in our state, its HF name (`{i}` = layer index) and how to reshape it.

    in_dims: for a linear kernel, how many leading dims of our (per-layer) shape form the HF "in" axis;
             None for tensors copied with a plain reshape (embeddings, norms, biases).
    """

    path: tuple[str, ...]
    hf_name: str
    per_layer: bool
    in_dims: int | None = None

    def hf_shape(self, ours: tuple[int, ...]) -> tuple[int, ...]:
        """The HF tensor shape that corresponds to one layer's (or the global) shape `ours`."""
        if self.in_dims is None:
            return (int(math.prod(ours)),) if self.hf_name.endswith(".bias") else tuple(ours)
        return (int(math.prod(ours[self.in_dims :])), int(math.prod(ours[: self.in_dims])))

    def from_hf(self, tensor: np.ndarray, ours: tuple[int, ...]) -> np.ndarray:
        """HF tensor -> our layout (one layer's slice when per_layer)."""
        return (tensor.T if self.in_dims is not None else tensor).reshape(ours)

    def to_hf(self, param: np.ndarray) -> np.ndarray:
        """Our (per-layer) array -> the HF tensor."""
        hf_shape = self.hf_shape(param.shape)
        if self.in_dims is None:
            return param.reshape(hf_shape)
        return param.reshape(hf_shape[1], hf_shape[0]).T


def tensor_specs(cfg: ModelConfig) -> list[TensorSpec]:
    """Every parameter of a model with config `cfg`, in checkpoint order."""
    layer = "model.layers.{i}."
    specs = [TensorSpec(("embed",), "model.embed_tokens.weight", per_layer=False)]
    per_layer = [
        (("input_norm", "weight"), "input_layernorm.weight", None),
        (("attn", "q_proj"), "self_attn.q_proj.weight", 1),
        (("attn", "k_proj"), "self_attn.k_proj.weight", 1),
        (("attn", "v_proj"), "self_attn.v_proj.weight", 1),
        (("attn", "o_proj"), "self_attn.o_proj.weight", 2),
        (("post_attn_norm", "weight"), "post_attention_layernorm.weight", None),
        (("mlp", "gate_proj"), "mlp.gate_proj.weight", 1),
        (("mlp", "up_proj"), "mlp.up_proj.weight", 1),
        (("mlp", "down_proj"), "mlp.down_proj.weight", 1),
    ]
    if cfg.qkv_bias:
        per_layer += [
            (("attn", "q_bias"), "self_attn.q_proj.bias", None),
            (("attn", "k_bias"), "self_attn.k_proj.bias", None),
            (("attn", "v_bias"), "self_attn.v_proj.bias", None),
        ]
    if cfg.qk_norm:
        per_layer += [
            (("attn", "q_norm", "weight"), "self_attn.q_norm.weight", None),
            (("attn", "k_norm", "weight"), "self_attn.k_norm.weight", None),
        ]
    specs += [TensorSpec(("layers",) + path, layer + name, True, in_dims) for path, name, in_dims in per_layer]
    specs.append(TensorSpec(("final_norm", "weight"), "model.norm.weight", per_layer=False))
    if not cfg.tie_word_embeddings:
        specs.append(TensorSpec(("lm_head",), "lm_head.weight", per_layer=False, in_dims=1))
    return specs


# Tensors some checkpoints carry that the model recomputes or ignores.
IGNORED_HF_TENSORS = ("rotary_emb.inv_freq",)
