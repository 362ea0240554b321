"""Reads a llama-architecture GGUF file as HF-named float32 tensors plus an HF-style config dict.

GGUF stores weights quantized (dequantized here with the `gguf` package) and, for llama, the Q and K
projections with their rows permuted for llama.cpp's interleaved RoPE; we undo that permutation so the
weights match HF's rotate-half RoPE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from herl_jax.models.config import ModelFileError, UnsupportedModelError

SUPPORTED_GGUF_ARCHITECTURES = ("llama",)

# GGUF per-block tensor names -> HF names (without the "model.layers.{i}." prefix).
_BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def unpermute_rope_rows(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's Q/K row permutation: per head, rows (pair, 2) -> (2, pair)."""
    rows = weight.shape[0]
    return weight.reshape(num_heads, rows // num_heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


class GGUFCheckpoint:
    """Tensors of a GGUF file by their HF names, dequantized to float32 on demand."""

    def __init__(self, path: str | Path):
        import gguf

        self.path = Path(path)
        try:
            self._reader = gguf.GGUFReader(str(self.path))
        except Exception as e:  # the gguf package raises bare ValueErrors / struct errors on bad files
            raise ModelFileError(f"{self.path}: not a readable GGUF file ({e})") from e
        self.arch = self._field("general.architecture")
        if self.arch not in SUPPORTED_GGUF_ARCHITECTURES:
            raise UnsupportedModelError(
                f"{self.path}: unsupported GGUF architecture {self.arch!r}; supported: {SUPPORTED_GGUF_ARCHITECTURES}"
            )
        self._tensors = {}
        for tensor in self._reader.tensors:
            hf_name = self._hf_name(tensor.name)
            if hf_name is None:
                raise UnsupportedModelError(f"{self.path}: unsupported GGUF tensor {tensor.name!r}")
            self._tensors[hf_name] = tensor

    def _field(self, key: str, default=None):
        field = self._reader.fields.get(key)
        return default if field is None else field.contents()

    @staticmethod
    def _hf_name(name: str) -> str | None:
        if name in _GLOBAL_NAMES:
            return _GLOBAL_NAMES[name]
        parts = name.split(".", 2)
        if len(parts) == 3 and parts[0] == "blk" and parts[2] in _BLOCK_NAMES:
            return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}"
        return None

    def hf_config(self) -> dict:
        """The equivalent HF config.json contents."""
        a = self.arch
        if self._field(f"{a}.rope.scaling.type", "none") not in ("none", None):
            raise UnsupportedModelError(f"{self.path}: GGUF rope scaling is not supported")
        heads = int(self._field(f"{a}.attention.head_count"))
        hidden = int(self._field(f"{a}.embedding_length"))
        vocab = self._field(f"{a}.vocab_size") or len(self._reader.fields["tokenizer.ggml.tokens"].data)
        return {
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": int(vocab),
            "hidden_size": hidden,
            "intermediate_size": int(self._field(f"{a}.feed_forward_length")),
            "num_hidden_layers": int(self._field(f"{a}.block_count")),
            "num_attention_heads": heads,
            "num_key_value_heads": int(self._field(f"{a}.attention.head_count_kv", heads)),
            "head_dim": int(self._field(f"{a}.attention.key_length", hidden // heads)),
            "rms_norm_eps": float(self._field(f"{a}.attention.layer_norm_rms_epsilon")),
            "rope_theta": float(self._field(f"{a}.rope.freq_base", 10000.0)),
            "max_position_embeddings": int(self._field(f"{a}.context_length", 4096)),
            "tie_word_embeddings": "lm_head.weight" not in self._tensors,
            "bos_token_id": self._field("tokenizer.ggml.bos_token_id"),
            "eos_token_id": self._field("tokenizer.ggml.eos_token_id"),
            "pad_token_id": self._field("tokenizer.ggml.padding_token_id"),
        }

    def names(self) -> list[str]:
        return list(self._tensors)

    def read(self, hf_name: str) -> np.ndarray:
        """float32 tensor in HF layout ([out, in] for linear weights)."""
        import gguf

        tensor = self._tensors[hf_name]
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
        if hf_name.endswith("q_proj.weight"):
            weight = unpermute_rope_rows(weight, int(self._field(f"{self.arch}.attention.head_count")))
        elif hf_name.endswith("k_proj.weight"):
            heads = self._field(f"{self.arch}.attention.head_count")
            weight = unpermute_rope_rows(weight, int(self._field(f"{self.arch}.attention.head_count_kv", heads)))
        return weight
