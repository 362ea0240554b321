"""Model configuration: one frozen dataclass for every supported decoder, read from a HF `config.json`.

Supported families (all Llama-style pre-norm decoders with GQA, RoPE, RMSNorm and SwiGLU):
  - llama  (Llama 3.x incl. the "llama3" RoPE scaling, SmolLM2)
  - qwen2  (Qwen2 / Qwen2.5: biases on q/k/v)
  - qwen3  (Qwen3: RMSNorm on q and k per head; head_dim independent of hidden_size / heads)
Anything else, or a field value this decoder would silently compute wrongly, is rejected with a message
that names it (`UnsupportedModelError`). `ModelFileError`, a model file that cannot be read, lives here too,
at the bottom of the package, so that the config and the GGUF reader raise it without importing `loading`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

from herl_jax.errors import UserError
from herl_jax.sections import check

ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}
ROPE_TYPES = ("default", "llama3")
DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_IMPLS = ("auto", "xla", "cudnn")


class UnsupportedModelError(UserError, ValueError):
    """A checkpoint asks for an architecture or a feature this decoder does not implement."""


class ModelFileError(UserError, ValueError):
    """A model file (config.json, a weight file) cannot be read, lacks a field or tensor, or has a wrong shape."""


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """Llama-3 style frequency scaling ("llama3" rope type)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shapes of the network (from config.json) plus how to run it (dtypes, attention, remat)."""

    family: str  # "llama" | "qwen2" | "qwen3"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    # How to run it: not part of the checkpoint.
    param_dtype: str = "float32"
    dtype: str = "float32"  # compute dtype of activations and matmuls
    attention_impl: str = "auto"  # "auto": cuDNN on GPU in half precision, XLA otherwise
    remat: bool = False  # recompute each layer's activations in the backward pass

    def __post_init__(self):
        if self.family not in ARCHITECTURES.values():
            raise UnsupportedModelError(
                f"unknown model family {self.family!r}; supported: {sorted(ARCHITECTURES.values())}"
            )
        check(self, [(getattr(self, name) in DTYPES, name, f"expected one of {DTYPES}")
                     for name in ("param_dtype", "dtype")]
              + [(self.attention_impl in ATTENTION_IMPLS, "attention_impl", f"expected one of {ATTENTION_IMPLS}")])
        if self.num_heads % self.num_kv_heads:
            raise UnsupportedModelError(
                f"num_attention_heads={self.num_heads} is not a multiple of "
                f"num_key_value_heads={self.num_kv_heads}"
            )
        if self.head_dim % 2:
            raise UnsupportedModelError(f"head_dim={self.head_dim} must be even for RoPE")

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @property
    def num_params(self) -> int:
        """Parameter count (embeddings included once when tied)."""
        d, f, h = self.hidden_size, self.intermediate_size, self.head_dim
        attn = d * h * (2 * self.num_heads + 2 * self.num_kv_heads)
        if self.qkv_bias:
            attn += h * (self.num_heads + 2 * self.num_kv_heads)
        if self.qk_norm:
            attn += 2 * h
        layer = attn + 3 * d * f + 2 * d
        head = 0 if self.tie_word_embeddings else d * self.vocab_size
        return self.vocab_size * d + self.num_layers * layer + d + head

    # ------------------------------------------------------------------ HF config.json <-> ModelConfig
    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any], **runtime: Any) -> "ModelConfig":
        """Builds a config from a parsed HF config.json; `runtime` sets dtype / attention_impl / remat."""
        archs = hf.get("architectures") or []
        family = None
        for arch in archs:
            family = ARCHITECTURES.get(arch)
            if family:
                break
        if family is None:
            raise UnsupportedModelError(
                f"unsupported architecture {archs or hf.get('model_type')!r}; "
                f"supported: {sorted(ARCHITECTURES)}"
            )
        _reject_unsupported_fields(hf, family)
        heads = int(hf["num_attention_heads"])
        eos = hf.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (int(eos),))
        rope_theta, rope_scaling = _read_rope(hf)
        return cls(
            family=family,
            vocab_size=int(hf["vocab_size"]),
            hidden_size=int(hf["hidden_size"]),
            intermediate_size=int(hf["intermediate_size"]),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or heads),
            head_dim=int(hf.get("head_dim") or hf["hidden_size"] // heads),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            max_position_embeddings=int(hf.get("max_position_embeddings", 4096)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qkv_bias=family == "qwen2",
            qk_norm=family == "qwen3",
            bos_token_id=hf.get("bos_token_id"),
            eos_token_ids=eos_ids,
            pad_token_id=hf.get("pad_token_id"),
            **runtime,
        )

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **runtime: Any) -> "ModelConfig":
        try:
            with open(path) as f:
                hf = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"model config not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ModelFileError(f"{path} is not valid JSON: {e}") from None
        try:
            return cls.from_hf_dict(hf, **runtime)
        except KeyError as e:
            raise ModelFileError(f"{path} lacks the required field {e.args[0]!r}") from None

    def to_hf_dict(self) -> dict[str, Any]:
        """The config.json transformers needs to load an exported checkpoint of this model."""
        arch = {v: k for k, v in ARCHITECTURES.items()}[self.family]
        rope: dict[str, Any] = {"rope_theta": self.rope_theta, "rope_type": "default"}
        if self.rope_scaling is not None:
            rope.update(rope_type="llama3", **dataclasses.asdict(self.rope_scaling))
        hf: dict[str, Any] = {
            "architectures": [arch],
            "model_type": self.family,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": rope,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": list(self.eos_token_ids) if len(self.eos_token_ids) != 1 else self.eos_token_ids[0],
            "pad_token_id": self.pad_token_id,
            "torch_dtype": self.param_dtype,
        }
        if self.family == "llama":
            hf.update(attention_bias=False, mlp_bias=False)
        if self.family == "qwen3":
            hf.update(attention_bias=False)
        return hf


def _read_rope(hf: Mapping[str, Any]) -> tuple[float, RopeScaling | None]:
    """RoPE base and scaling from either transformers-5 `rope_parameters` or legacy `rope_scaling`."""
    params = dict(hf.get("rope_parameters") or {})
    legacy = hf.get("rope_scaling") or {}
    params = {**legacy, **params}
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise UnsupportedModelError(f"unsupported rope type {kind!r} in rope_scaling; supported: {ROPE_TYPES}")
    if kind == "default":
        return theta, None
    try:
        scaling = RopeScaling(
            factor=float(params["factor"]),
            low_freq_factor=float(params["low_freq_factor"]),
            high_freq_factor=float(params["high_freq_factor"]),
            original_max_position_embeddings=int(params["original_max_position_embeddings"]),
        )
    except KeyError as e:
        raise KeyError(f"llama3 rope scaling lacks the field {e.args[0]!r}") from None
    return theta, scaling


def _reject_unsupported_fields(hf: Mapping[str, Any], family: str) -> None:
    """Fails on config values that this decoder would otherwise ignore and so compute wrongly."""
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise UnsupportedModelError(f"unsupported hidden_act {act!r}; supported: ['silu']")
    if family == "llama":
        for key in ("attention_bias", "mlp_bias"):
            if hf.get(key):
                raise UnsupportedModelError(f"unsupported field {key}=true for llama; supported: false")
    if family == "qwen3" and hf.get("attention_bias"):
        raise UnsupportedModelError("unsupported field attention_bias=true for qwen3; supported: false")
    if hf.get("use_sliding_window"):
        raise UnsupportedModelError("unsupported field use_sliding_window=true; only full attention is supported")
    layer_types = hf.get("layer_types") or []
    if any(t != "full_attention" for t in layer_types):
        raise UnsupportedModelError(
            f"unsupported layer_types {sorted(set(layer_types))}; supported: ['full_attention']"
        )
    if hf.get("quantization_config"):
        raise UnsupportedModelError("quantized checkpoints (quantization_config) are not supported")


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """The `model` config section (training and evaluation): which policy to load and how it computes."""

    source: str = "smollm2-135m-instruct"  # HF checkpoint dir, .gguf file or built-in name
    dtype: str = "bfloat16"  # compute dtype; master params and optimizer state stay float32
    attention_impl: str = "auto"  # auto | xla | cudnn
    remat: bool = True  # recompute layer activations in the backward pass

    def __post_init__(self):
        check(self, [(self.dtype in DTYPES, "dtype", f"expected one of {DTYPES}"),
                     (self.attention_impl in ATTENTION_IMPLS, "attention_impl", f"expected one of {ATTENTION_IMPLS}")])
