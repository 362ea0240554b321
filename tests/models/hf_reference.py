"""Tiny random transformers checkpoints (the independent reference for the model tests)."""

from __future__ import annotations

import numpy as np
import torch
import transformers

TINY = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5)

FAMILIES = {
    # Llama 3.2 style: llama3 RoPE scaling, tied embeddings. original_max_position_embeddings is small so
    # that all three frequency bands of the scaling occur with head_dim 16.
    "llama": lambda: transformers.LlamaConfig(
        **TINY, tie_word_embeddings=True, rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)),
    # Qwen2.5 7B style: q/k/v biases, untied head.
    "qwen2": lambda: transformers.Qwen2Config(**TINY, tie_word_embeddings=False, rope_theta=1e6),
    # Qwen3: q/k RMSNorm, head_dim (24) != hidden_size / heads (8).
    "qwen3": lambda: transformers.Qwen3Config(**TINY, head_dim=24, tie_word_embeddings=False, rope_theta=1e6),
}
MODEL_CLASSES = {
    "llama": transformers.LlamaForCausalLM,
    "qwen2": transformers.Qwen2ForCausalLM,
    "qwen3": transformers.Qwen3ForCausalLM,
}


def make_checkpoint(family: str, directory, seed: int = 0):
    """Saves a random `family` model with every tensor (norms and biases too) randomized; returns it."""
    torch.manual_seed(seed)
    model = MODEL_CLASSES[family](FAMILIES[family]()).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.1)
    model.save_pretrained(str(directory))
    return model


def left_padded_batch(rows: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids [B, T], mask [B, T]) with each row right-aligned."""
    width = max(map(len, rows))
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = row
        mask[i, width - len(row):] = 1
    return ids, mask


def reference_logits(model, rows: list[list[int]]) -> list[np.ndarray]:
    """transformers' float32 logits for each row alone (no padding): list of [len, V]."""
    with torch.no_grad():
        return [model(torch.tensor([row])).logits[0].float().numpy() for row in rows]
