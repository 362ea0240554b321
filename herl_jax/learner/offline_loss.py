"""The SFT and DPO losses of the offline baselines (the paper's Table 1 rows "+ SFT" and "+ DPO"): pure jax.numpy.

SFT (token-mean NLL over the response tokens of the whole mini-batch):
  loss = −Σ_b Σ_t m_bt log π_θ(y_bt) / num_tokens
DPO (Rafailov et al. 2023, Eq. 7), per pair k of a chosen response c and a rejected one r under the same prompt,
with sequence log-probs s(·) = Σ_t m_bt log π(y_bt) under the policy and the frozen reference:
  h_k  = β [(s_θ(c) − s_ref(c)) − (s_θ(r) − s_ref(r))]
  loss = Σ_k −log σ(h_k) / num_pairs
Rows come in pairs: row 2k is pair k's chosen response, row 2k + 1 its rejected one (``learner.micro_batches``
keeps each pair in one micro-batch). Like ``loss.policy_loss``, each function returns one micro-batch's share of
the mini-batch loss, normalized by counts of the whole mini-batch (``loss.Normalizer``), so summing over
micro-batches gives the mini-batch loss and gradient however the rows are grouped; so are the metrics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from herl_jax.learner.loss import Normalizer


def sft_loss(logprobs: jax.Array, loss_mask: jax.Array,
             normalizer: Normalizer) -> tuple[jax.Array, dict[str, jax.Array]]:
    """logprobs: [B, T] of the targets; loss_mask: [B, T] bool, response tokens. Metrics: loss (= nll)."""
    mask = loss_mask.astype(bool)
    nll = jnp.where(mask, -logprobs, 0.0).sum() / jnp.maximum(normalizer.num_tokens, 1.0)
    return nll, dict(loss=nll, nll=nll)


def dpo_loss(logprobs: jax.Array, ref_logprobs: jax.Array, loss_mask: jax.Array, normalizer: Normalizer,
             beta: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """logprobs, ref_logprobs: [B, T] under the policy and the reference; loss_mask: [B, T] bool; B even,
    rows (2k, 2k + 1) = (chosen, rejected) of pair k. A padding pair (no loss token) adds nothing.

    Metrics (shares of the mini-batch mean over pairs): loss; reward_chosen, reward_rejected: the implicit
    rewards β (s_θ − s_ref); reward_margin: their difference h; reward_accuracy: the fraction of pairs with h > 0.
    """
    mask = loss_mask.astype(bool)
    seq = jnp.where(mask, logprobs, 0.0).sum(axis=1)  # [B]
    ref_seq = jnp.where(mask, ref_logprobs, 0.0).sum(axis=1)
    rewards = (beta * (seq - ref_seq)).reshape(-1, 2)  # [pairs, (chosen, rejected)]
    real = mask.any(axis=1).reshape(-1, 2).all(axis=1)  # [pairs]
    margin = rewards[:, 0] - rewards[:, 1]
    num_pairs = jnp.maximum(normalizer.num_sequences / 2.0, 1.0)  # every row of a real pair has loss tokens

    def share(per_pair):
        return jnp.where(real, per_pair, 0.0).sum() / num_pairs

    loss = share(jax.nn.softplus(-margin))  # −log σ(h) = softplus(−h), stable for large |h|
    return loss, dict(loss=loss, reward_chosen=share(rewards[:, 0]), reward_rejected=share(rewards[:, 1]),
                      reward_margin=share(margin), reward_accuracy=share((margin > 0).astype(jnp.float32)))
