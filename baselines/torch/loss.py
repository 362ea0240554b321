"""The HeRL policy loss in PyTorch, as a careful PyTorch user would write it (the speed baseline).

Same switches and conventions as ``herl_jax.learner.loss`` but written independently from the
equations (docs/algorithm.md §3, §7): per loss token, ρ = exp(logp − old_logp);
  original rows:  −min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A), capped at −cA for A < 0 with dual clip c;
  revision rows:  −f(x)A, f(x) = x/(x+γ), x = ρ ("ratio") or exp(logp) ("prob"), unclipped;
  loss = agg(policy) + kl_coef·agg(KL) − entropy_coef·agg(entropy),
where agg is the mean over sequences of per-sequence token means (Eq. 9) or the token mean, with the
counts taken over the whole mini-batch (``Counts``), so micro-batch losses add up to the mini-batch loss.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

LOG_RATIO_CLAMP = 20.0
LOW_VAR_KL_CLAMP = 10.0


@dataclasses.dataclass(frozen=True)
class LossConfig:
    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2
    dual_clip_c: float | None = None
    shaping_gamma: float = 1.0
    shaping_x: str = "ratio"  # ratio | prob
    kl_type: str = "low_var_kl"  # low_var_kl | k1 | k2
    kl_coef: float = 1e-4
    entropy_coef: float = 0.0
    agg_mode: str = "seq_mean_token_mean"  # seq_mean_token_mean | token_mean


class Counts(NamedTuple):
    """Mini-batch counts (float tensors): sequences with a loss token, and loss tokens per kind."""

    sequences: torch.Tensor
    tokens: torch.Tensor
    original_tokens: torch.Tensor
    revision_tokens: torch.Tensor


def mini_batch_counts(loss_mask: torch.Tensor, is_revision: torch.Tensor) -> Counts:
    """loss_mask [B, T] bool, is_revision [B] bool, of the whole mini-batch."""
    lengths = loss_mask.float().sum(1)
    return Counts(
        sequences=(lengths > 0).float().sum(),
        tokens=lengths.sum(),
        original_tokens=lengths[~is_revision].sum(),
        revision_tokens=lengths[is_revision].sum(),
    )


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
                   entropy_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [B, T, V] (any dtype) -> float32 log-probs of targets [B, T] and the entropy [B, T].

    entropy_grad=False computes the entropy as a metric only (no autograd graph, no extra memory).
    """
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)
    logp = logp_all.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def _aggregate(values: torch.Tensor, mask: torch.Tensor, counts: Counts, mode: str) -> torch.Tensor:
    values = torch.where(mask, values, torch.zeros_like(values))
    if mode == "token_mean":
        return values.sum() / counts.tokens.clamp(min=1)
    per_sequence = values.sum(1) / mask.sum(1).clamp(min=1)
    return per_sequence.sum() / counts.sequences.clamp(min=1)


def _kl(logp: torch.Tensor, ref: torch.Tensor, kl_type: str) -> torch.Tensor:
    diff = logp - ref
    if kl_type == "k1":
        return diff
    if kl_type == "k2":
        return 0.5 * diff.square()
    neg = (-diff).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return (neg.exp() - neg - 1).clamp(-LOW_VAR_KL_CLAMP, LOW_VAR_KL_CLAMP)


def _ppo_surrogate(ratio: torch.Tensor, adv: torch.Tensor, cfg: LossConfig):
    """The clipped surrogate (to minimize) with the optional dual clip, and where each clip bound."""
    surrogate = -adv * ratio
    clipped_surrogate = -adv * ratio.clamp(1 - cfg.clip_eps_low, 1 + cfg.clip_eps_high)
    pg = torch.maximum(surrogate, clipped_surrogate)
    dual_clipped = torch.zeros_like(ratio, dtype=torch.bool)
    if cfg.dual_clip_c is not None:
        cap = -adv * cfg.dual_clip_c
        dual_clipped = (adv < 0) & (pg > cap)
        pg = torch.where(adv < 0, torch.minimum(pg, cap), pg)
    return pg, clipped_surrogate > surrogate, dual_clipped


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    is_revision: torch.Tensor,
    loss_mask: torch.Tensor,
    counts: Counts,
    cfg: LossConfig,
    ref_logprobs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of a micro-batch (to minimize) and its metrics; all [B, T] but advantages / is_revision [B]."""
    mask = loss_mask.bool()
    zeros = torch.zeros_like(logprobs)
    logp = torch.where(mask, logprobs, zeros)  # masked positions may hold anything, even nan
    old = torch.where(mask, old_logprobs, zeros)
    adv = advantages.float().unsqueeze(1)
    rev = is_revision.bool().unsqueeze(1)
    original_mask, revision_mask = mask & ~rev, mask & rev

    ratio = (logp - old).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()
    pg_original, clipped, dual_clipped = _ppo_surrogate(ratio, adv, cfg)
    x = ratio if cfg.shaping_x == "ratio" else logp.exp()
    weight = x / (x + cfg.shaping_gamma)
    pg_revision = -adv * weight

    pg_loss_original = _aggregate(pg_original, original_mask, counts, cfg.agg_mode)
    pg_loss_revision = _aggregate(pg_revision, revision_mask, counts, cfg.agg_mode)
    pg_loss = pg_loss_original + pg_loss_revision
    kl = zeros.sum()
    if ref_logprobs is not None:
        kl = _aggregate(_kl(logp, torch.where(mask, ref_logprobs, zeros), cfg.kl_type), mask, counts, cfg.agg_mode)
    elif cfg.kl_coef:
        raise ValueError("kl_coef != 0 needs ref_logprobs")
    ent = zeros.sum()
    if entropy is not None:
        ent = _aggregate(entropy, mask, counts, cfg.agg_mode)
    elif cfg.entropy_coef:
        raise ValueError("entropy_coef != 0 needs the entropy")
    loss = pg_loss + cfg.kl_coef * kl - cfg.entropy_coef * ent

    with torch.no_grad():
        def share(values, m, count):
            return torch.where(m, values.float(), torch.zeros_like(logprobs)).sum() / count.clamp(min=1)

        metrics = dict(
            loss=loss.detach(), pg_loss=pg_loss.detach(), pg_loss_original=pg_loss_original.detach(),
            pg_loss_revision=pg_loss_revision.detach(), kl=kl.detach(), entropy=ent.detach(),
            clip_frac=share(clipped, original_mask, counts.original_tokens),
            dual_clip_frac=share(dual_clipped, original_mask, counts.original_tokens),
            ratio_mean=share(ratio, mask, counts.tokens),
            ratio_max=torch.where(mask, ratio, zeros).max(),
            revision_weight_mean=share(weight, revision_mask, counts.revision_tokens),
        )
    return loss, metrics
