"""The HeRL policy loss (Eqs. 9, 11, 12 and the KL / entropy terms): pure jax.numpy, jittable.

Per loss token (loss_mask True) of sequence b at position t, with ρ = exp(logp − old_logp):
  original b:  −min(ρA, clip(ρ, 1−ε_low, 1+ε_high) A), and with dual clip c, for A < 0, capped at −cA;
  revision b:  −f(x) A, f(x) = x / (x + γ), x = ρ ("ratio", the paper) or π_θ = exp(logp) ("prob",
               LUFFY); unclipped, and the gradient flows through f.
  loss = agg(policy term) + kl_coef · agg(KL(π_θ ‖ π_ref)) − entropy_coef · agg(entropy).

Aggregation and micro-batches: the caller computes a ``Normalizer`` ONCE from the whole mini-batch
(``mini_batch_normalizer``) and passes it to every micro-batch; then
  seq_mean_token_mean (Eq. 9):  agg(v) = Σ_b [Σ_t m_bt v_bt / Σ_t m_bt] / num_sequences,
  token_mean (mini-batch):      agg(v) = Σ_b Σ_t m_bt v_bt / num_tokens,
are sums of per-row terms (a row's own length comes from its own mask), so the loss of the mini-batch
and its gradient are exactly the SUM over micro-batches of ``policy_loss``, however the rows are
grouped. num_sequences counts the rows that have at least one loss token. Eq. 9 weights each group by
1/(N+1); summing over prompts and dividing by the sequence count equals that average when all groups
have the same size, and weights every sequence equally (as verl does) when they do not.
  micro_token_mean (public code):  agg(v) = Σ_b Σ_t m_bt v_bt / (n · K),
n being the loss tokens of THIS micro-batch and K = num_micro_batches, so the sum over micro-batches is
the MEAN over micro-batches of their token means: verl's token-mean loss with gradient accumulation
(each micro-batch's loss divided by the number of micro-batches). Unlike the two above it depends on
which rows share a micro-batch (``learner.micro_batches`` says which).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from herl_jax.learner.config import LossConfig

_LOG_RATIO_CLAMP = 20.0  # as verl: bounds exp() of log-ratios
_LOW_VAR_KL_CLAMP = 10.0


class Normalizer(NamedTuple):
    """Counts over the WHOLE mini-batch (float32 scalars); shared by all its micro-batches."""

    num_sequences: jax.Array  # rows with at least one loss token
    num_tokens: jax.Array  # loss tokens
    num_original_tokens: jax.Array  # loss tokens of original (non-revision) rows
    num_revision_tokens: jax.Array  # loss tokens of revision rows
    num_micro_batches: jax.Array  # micro-batches with at least one loss token (micro_token_mean only)


def mini_batch_normalizer(loss_mask: jax.Array, is_revision: jax.Array,
                          num_micro_batches: int = 1) -> Normalizer:
    """loss_mask: [B, T] bool, is_revision: [B] bool, both of the whole mini-batch. num_micro_batches:
    how many of its micro-batches hold a loss token; only ``micro_token_mean`` reads it."""
    mask = loss_mask.astype(jnp.float32)
    lengths = mask.sum(axis=1)
    rev = is_revision.astype(jnp.float32)
    return Normalizer(
        num_sequences=(lengths > 0).sum().astype(jnp.float32),
        num_tokens=lengths.sum(),
        num_original_tokens=(lengths * (1.0 - rev)).sum(),
        num_revision_tokens=(lengths * rev).sum(),
        num_micro_batches=jnp.float32(num_micro_batches),
    )


def _masked_sum(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask, values, 0.0).sum()


def _aggregation_normalizer(normalizer: Normalizer, loss_mask: jax.Array, mode: str) -> Normalizer:
    """The counts the loss terms divide by: the mini-batch's, but for ``micro_token_mean`` num_tokens is
    this micro-batch's own loss-token count (loss_mask [B, T]) times the number of micro-batches."""
    if mode != "micro_token_mean":
        return normalizer
    own_tokens = loss_mask.astype(jnp.float32).sum()
    return normalizer._replace(num_tokens=own_tokens * jnp.maximum(normalizer.num_micro_batches, 1.0))


def _aggregate(values: jax.Array, mask: jax.Array, normalizer: Normalizer, mode: str) -> jax.Array:
    """values, mask: [B, T] -> scalar, normalized by ``_aggregation_normalizer`` (module docstring)."""
    if mode in ("token_mean", "micro_token_mean"):
        return _masked_sum(values, mask) / jnp.maximum(normalizer.num_tokens, 1.0)
    lengths = jnp.maximum(mask.sum(axis=1), 1)
    seq_means = jnp.where(mask, values, 0.0).sum(axis=1) / lengths
    return seq_means.sum() / jnp.maximum(normalizer.num_sequences, 1.0)


def _kl(logp: jax.Array, ref_logp: jax.Array, kl_type: str) -> jax.Array:
    if kl_type == "k1":
        return logp - ref_logp
    if kl_type == "k2":
        return 0.5 * jnp.square(logp - ref_logp)
    log_ratio = jnp.clip(ref_logp - logp, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return jnp.clip(jnp.exp(log_ratio) - log_ratio - 1.0, -_LOW_VAR_KL_CLAMP, _LOW_VAR_KL_CLAMP)


def _ppo_surrogate(ratio: jax.Array, adv: jax.Array, cfg: LossConfig):
    """Eq. 11 per token, to minimize: max(−ρA, −clip(ρ)A), and with dual clip c, for A < 0, capped at −cA.
    ratio: [B, T]; adv: [B, 1]. Also returns where the clip and the dual clip bound ([B, T] bool each)."""
    unclipped = -adv * ratio
    clipped = -adv * jnp.clip(ratio, 1.0 - cfg.clip_eps_low, 1.0 + cfg.clip_eps_high)
    pg = jnp.maximum(unclipped, clipped)
    is_dual_clipped = jnp.zeros(ratio.shape, bool)
    if cfg.dual_clip_c is not None:
        cap = -adv * cfg.dual_clip_c
        is_dual_clipped = (adv < 0) & (pg > cap)
        pg = jnp.where(adv < 0, jnp.minimum(pg, cap), pg)
    return pg, clipped > unclipped, is_dual_clipped


def _regularizers(logp, ref_logprobs, entropy, mask, agg, cfg: LossConfig) -> tuple[jax.Array, jax.Array]:
    """The aggregated KL to the reference and entropy (0 when not given, which their coefficients must allow)."""
    if ref_logprobs is None:
        if cfg.kl_coef != 0.0:
            raise ValueError("kl_coef != 0 needs ref_logprobs")
        kl = jnp.zeros((), jnp.float32)
    else:
        kl = agg(_kl(logp, jnp.where(mask, ref_logprobs, 0.0), cfg.kl_type), mask)
    if entropy is None:
        if cfg.entropy_coef != 0.0:
            raise ValueError("entropy_coef != 0 needs the entropy")
        return kl, jnp.zeros((), jnp.float32)
    return kl, agg(entropy, mask)


def policy_loss(
    logprobs: jax.Array, old_logprobs: jax.Array, advantages: jax.Array, is_revision: jax.Array,
    loss_mask: jax.Array, normalizer: Normalizer, cfg: LossConfig,
    ref_logprobs: jax.Array | None = None, entropy: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The HeRL loss of one micro-batch (to minimize) and its metrics.

    logprobs: [B, T] current-policy log-probs of the targets (differentiated). old_logprobs,
    ref_logprobs: [B, T] from the policy before the update and the frozen reference. advantages: [B].
    is_revision: [B] bool. loss_mask: [B, T] bool, response tokens only. entropy: [B, T], optional.
    normalizer: from ``mini_batch_normalizer`` over the whole mini-batch (micro_token_mean also uses
    this micro-batch's own token count, from loss_mask).

    Positions outside loss_mask contribute exactly zero to the loss and its gradient, whatever values
    they hold. Metrics (float32 scalars): every one except ``ratio_max`` is this micro-batch's share of
    the mini-batch value, so summing over micro-batches gives the mini-batch metric; ``ratio_max``
    combines with max. loss = pg_loss + kl_coef·kl − entropy_coef·entropy; pg_loss =
    pg_loss_original + pg_loss_revision; clip_frac, dual_clip_frac: fractions of original tokens;
    ratio_mean / ratio_max: over all loss tokens; revision_weight_mean: mean f(x) over revision tokens.
    """
    mask = loss_mask.astype(bool)
    # Replace masked values before any exp, so masked positions cannot produce inf/nan gradients.
    logp = jnp.where(mask, logprobs, 0.0)
    old = jnp.where(mask, old_logprobs, 0.0)
    adv = advantages.astype(jnp.float32)[:, None]
    rev = is_revision.astype(bool)[:, None]
    orig_mask, rev_mask = mask & ~rev, mask & rev

    ratio = jnp.exp(jnp.clip(logp - old, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    pg_original, is_clipped, is_dual_clipped = _ppo_surrogate(ratio, adv, cfg)
    x = ratio if cfg.shaping_x == "ratio" else jnp.exp(logp)
    weight = x / (x + cfg.shaping_gamma)
    pg_revision = -adv * weight

    agg = functools.partial(_aggregate, normalizer=_aggregation_normalizer(normalizer, mask, cfg.agg_mode),
                            mode=cfg.agg_mode)
    pg_original_loss = agg(pg_original, orig_mask)
    pg_revision_loss = agg(pg_revision, rev_mask)
    pg_loss = pg_original_loss + pg_revision_loss
    kl, ent = _regularizers(logp, ref_logprobs, entropy, mask, agg, cfg)
    loss = pg_loss + cfg.kl_coef * kl - cfg.entropy_coef * ent

    def token_share(values, m, count):  # this micro-batch's share of a mean over the mini-batch's tokens
        return _masked_sum(values.astype(jnp.float32), m) / jnp.maximum(count, 1.0)

    metrics = dict(
        loss=loss, pg_loss=pg_loss, pg_loss_original=pg_original_loss, pg_loss_revision=pg_revision_loss,
        kl=kl, entropy=ent,
        clip_frac=token_share(is_clipped, orig_mask, normalizer.num_original_tokens),
        dual_clip_frac=token_share(is_dual_clipped, orig_mask, normalizer.num_original_tokens),
        ratio_mean=token_share(ratio, mask, normalizer.num_tokens),
        ratio_max=jnp.where(mask, ratio, 0.0).max(),
        revision_weight_mean=token_share(weight, rev_mask, normalizer.num_revision_tokens),
    )
    return loss, metrics
