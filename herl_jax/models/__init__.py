"""Policy models: one Flax NNX decoder for Llama / Qwen2 / Qwen3, with HF and GGUF loading and HF export.

Names load with their module when first used (herl_jax.lazy): `herl_jax.models.config` needs no JAX.
"""

from herl_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "config": ("ModelConfig", "ModelFileError", "RopeScaling", "UnsupportedModelError"),
    "decoder": ("Decoder",),
    "export": ("export_hf",),
    "kv_cache": ("KVCache",),
    "loading": ("BUILTIN_MODELS", "load_model", "load_policy", "load_tokenizer"),
})
