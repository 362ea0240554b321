"""Policy models: one Flax NNX decoder for Llama / Qwen2 / Qwen3, with HF and GGUF loading and HF export."""

from herl_jax.models.config import ModelConfig, ModelFileError, RopeScaling, UnsupportedModelError
from herl_jax.models.decoder import Decoder
from herl_jax.models.export import export_hf
from herl_jax.models.kv_cache import KVCache
from herl_jax.models.loading import (
    BUILTIN_MODELS,
    load_model,
    load_policy,
    load_tokenizer,
)

__all__ = [
    "BUILTIN_MODELS",
    "Decoder",
    "KVCache",
    "ModelConfig",
    "ModelFileError",
    "RopeScaling",
    "UnsupportedModelError",
    "export_hf",
    "load_model",
    "load_policy",
    "load_tokenizer",
]
