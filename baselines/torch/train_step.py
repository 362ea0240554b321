"""One PPO mini-batch step in PyTorch: a transformers causal LM, the torch HeRL loss, AdamW.

What a careful PyTorch user runs: fp32 parameters, optional autocast (bf16 on GPU), gradient
accumulation over micro-batches with the loss normalized over the whole mini-batch, global-norm
clipping, then ``optimizer.step()``. Batches are the same ``collate`` dicts the JAX step takes
(as torch tensors): input_ids, positions, attention_mask, targets, loss_mask [B, T]; advantages,
is_revision [B].
"""

from __future__ import annotations

import contextlib

import torch

from baselines.torch.loss import LossConfig, mini_batch_counts, policy_loss, token_logprobs


def response_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits [b, T, V] aligned with ``batch["targets"]``: position t scores targets[t]."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long(),
                 position_ids=batch["positions"].long()).logits


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@torch.no_grad()
def compute_logprobs(model, batch, *, micro_batch_size: int, temperature: float = 1.0,
                     autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Per-token log-probs [B, T] of the targets, before the update."""
    device = batch["input_ids"].device
    parts = []
    for i in range(0, batch["input_ids"].shape[0], micro_batch_size):
        micro = {k: v[i : i + micro_batch_size] for k, v in batch.items()}
        with _autocast(device, autocast_dtype):
            logits = response_logits(model, micro)
        parts.append(token_logprobs(logits, micro["targets"], temperature, entropy_grad=False)[0])
    return torch.cat(parts)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    minibatch: dict[str, torch.Tensor],
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    cfg: LossConfig,
    *,
    micro_batch_size: int,
    max_grad_norm: float,
    temperature: float = 1.0,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Forward + backward over the micro-batches, clip, AdamW step. Returns the mini-batch metrics."""
    device = minibatch["input_ids"].device
    counts = mini_batch_counts(minibatch["loss_mask"], minibatch["is_revision"])
    totals: dict[str, torch.Tensor] = {}
    for i in range(0, minibatch["input_ids"].shape[0], micro_batch_size):
        rows = slice(i, i + micro_batch_size)
        micro = {k: v[rows] for k, v in minibatch.items()}
        with _autocast(device, autocast_dtype):
            logits = response_logits(model, micro)
        logp, entropy = token_logprobs(logits, micro["targets"], temperature, entropy_grad=cfg.entropy_coef != 0)
        loss, metrics = policy_loss(logp, old_logprobs[rows], micro["advantages"], micro["is_revision"],
                                    micro["loss_mask"], counts, cfg,
                                    ref_logprobs=None if ref_logprobs is None else ref_logprobs[rows],
                                    entropy=entropy)
        loss.backward()
        for k, v in metrics.items():
            totals[k] = v if k not in totals else (torch.maximum if k == "ratio_max" else torch.add)(totals[k], v)
    totals["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return totals
