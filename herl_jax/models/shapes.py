"""The shapes of well-known models, for building one without its files: the memory planner
(herl_jax.plan) for the paper's models and the benchmarks for their random-weight models.

One table, so that every user of a model name agrees on its shape. Each entry holds the fields of the
model's config.json that `ModelConfig.from_hf_dict` reads, copied from the published checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from herl_jax.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class KnownModel:
    checkpoint: str  # the published checkpoint's name (its directory's name), e.g. "Qwen2.5-7B-Instruct"
    config_json: Mapping[str, Any]  # its config.json's fields


_QWEN2 = dict(architectures=["Qwen2ForCausalLM"], rms_norm_eps=1e-6, rope_theta=1e6, max_position_embeddings=32768,
              bos_token_id=151643, eos_token_id=151645)

# Short name (as configs/paper.py and the benchmarks' --model spell it) -> the model.
KNOWN_MODELS: dict[str, KnownModel] = {
    "qwen2.5-0.5b": KnownModel("Qwen2.5-0.5B-Instruct", dict(
        _QWEN2, vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)),
    "qwen2.5-7b": KnownModel("Qwen2.5-7B-Instruct", dict(
        _QWEN2, vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False)),
    "llama3.2-3b": KnownModel("Llama-3.2-3B-Instruct", dict(
        architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=3072, intermediate_size=8192,
        num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-5,
        rope_theta=500000.0, rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                               high_freq_factor=4.0, original_max_position_embeddings=8192),
        max_position_embeddings=131072, tie_word_embeddings=True, bos_token_id=128000,
        eos_token_id=[128001, 128008, 128009])),
    "qwen3-4b": KnownModel("Qwen3-4B-Instruct-2507", dict(
        architectures=["Qwen3ForCausalLM"], vocab_size=151936, hidden_size=2560, intermediate_size=9728,
        num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
        rope_theta=5e6, max_position_embeddings=262144, tie_word_embeddings=True, bos_token_id=151643,
        eos_token_id=151645)),
    "smollm2-135m": KnownModel("SmolLM2-135M-Instruct", dict(
        architectures=["LlamaForCausalLM"], vocab_size=49152, hidden_size=576, intermediate_size=1536,
        num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, head_dim=64, rms_norm_eps=1e-5,
        rope_theta=100000.0, max_position_embeddings=8192, tie_word_embeddings=True, bos_token_id=1,
        eos_token_id=2, pad_token_id=2)),
}


def find_known_model(name: str) -> KnownModel | None:
    """The model `name` (a short name or a checkpoint name, any case) is, or None."""
    wanted = name.lower()
    return next((m for short, m in KNOWN_MODELS.items() if wanted in (short, m.checkpoint.lower())), None)


def known_model_config(name: str, **runtime: Any) -> ModelConfig:
    """The ModelConfig of a known model (`runtime`: dtype, param_dtype, attention_impl, remat)."""
    model = find_known_model(name)
    if model is None:
        raise KeyError(f"unknown model {name!r}; known: {sorted(KNOWN_MODELS)} or their checkpoint names "
                       f"{sorted(m.checkpoint for m in KNOWN_MODELS.values())}")
    return ModelConfig.from_hf_dict(model.config_json, **runtime)
