"""The SFT and DPO losses against a float64 numpy re-derivation from their published formulas (SFT: the mean
negative log-likelihood of the response tokens; DPO: Rafailov et al. 2023, Eq. 7, with sequence log-prob sums
and a frozen reference), on random tiny inputs, whole and cut into micro-batches."""

import jax
import numpy as np
import pytest

from herl_jax.learner.loss import mini_batch_normalizer
from herl_jax.learner.offline_loss import dpo_loss, sft_loss

B, T = 8, 9
# (first loss position, number of loss tokens) per row; rows 6 and 7 are a padding pair (no loss token).
SPANS = [(2, 6), (1, 8), (4, 3), (3, 5), (0, 1), (5, 4), (0, 0), (0, 0)]


def random_inputs(seed: int):
    rng = np.random.default_rng(seed)
    mask = np.zeros((B, T), bool)
    for b, (start, count) in enumerate(SPANS):
        mask[b, start : start + count] = True
    logp = -rng.exponential(2.0, (B, T))  # log-probs: <= 0
    ref = -rng.exponential(2.0, (B, T))
    return logp, ref, mask


def nll_float64(logp, mask):
    return -np.sum(logp[mask].astype(np.float64)) / mask.sum()


def dpo_float64(logp, ref, mask, beta):
    """-mean over real pairs of log sigmoid(beta ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))))."""
    terms = []
    for k in range(B // 2):
        c, r = 2 * k, 2 * k + 1
        if not mask[c].any():
            continue
        pi_c, pi_r = np.float64(logp[c][mask[c]]).sum(), np.float64(logp[r][mask[r]]).sum()
        ref_c, ref_r = np.float64(ref[c][mask[c]]).sum(), np.float64(ref[r][mask[r]]).sum()
        h = beta * ((pi_c - ref_c) - (pi_r - ref_r))
        terms.append((-np.log(1.0 / (1.0 + np.exp(-h))), h))
    return np.mean([t for t, _ in terms]), np.array([h for _, h in terms])


def pieces(rows_per_micro: int):
    return [slice(i, i + rows_per_micro) for i in range(0, B, rows_per_micro)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rows_per_micro", [8, 4, 2])
def test_sft_loss_is_the_token_mean_nll_over_micro_batches(seed, rows_per_micro):
    logp, _, mask = random_inputs(seed)
    normalizer = mini_batch_normalizer(mask, np.zeros(B, bool))
    total = sum(float(sft_loss(logp[s].astype(np.float32), mask[s], normalizer)[0]) for s in pieces(rows_per_micro))
    assert total == pytest.approx(nll_float64(logp, mask), rel=1e-5)


def test_sft_gradient_is_minus_one_over_the_token_count_on_response_tokens():
    logp, _, mask = random_inputs(2)
    normalizer = mini_batch_normalizer(mask, np.zeros(B, bool))
    grad = jax.grad(lambda x: sft_loss(x, mask, normalizer)[0])(logp.astype(np.float32))
    np.testing.assert_allclose(grad, np.where(mask, -1.0 / mask.sum(), 0.0), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rows_per_micro", [8, 4, 2])
@pytest.mark.parametrize("beta", [0.1, 2.0])
def test_dpo_loss_and_margin_match_the_published_formula(seed, rows_per_micro, beta):
    logp, ref, mask = random_inputs(seed)
    normalizer = mini_batch_normalizer(mask, np.zeros(B, bool))
    parts = [dpo_loss(logp[s].astype(np.float32), ref[s].astype(np.float32), mask[s], normalizer, beta)[1]
             for s in pieces(rows_per_micro)]
    expected_loss, h = dpo_float64(logp, ref, mask, beta)
    total = {k: sum(float(p[k]) for p in parts) for k in parts[0]}
    assert total["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert total["reward_margin"] == pytest.approx(h.mean(), rel=1e-5, abs=1e-6)
    assert total["reward_accuracy"] == pytest.approx(np.mean(h > 0))
    assert total["reward_chosen"] - total["reward_rejected"] == pytest.approx(h.mean(), rel=1e-4, abs=1e-5)


def test_dpo_gradient_matches_the_derivative_of_the_published_formula():
    """d/d log pi(y_t) of -log sigmoid(h)/P is -beta sigmoid(-h)/P on the chosen response's tokens and
    +beta sigmoid(-h)/P on the rejected one's; 0 on the reference and off the mask."""
    beta = 0.5
    logp, ref, mask = random_inputs(3)
    normalizer = mini_batch_normalizer(mask, np.zeros(B, bool))
    grad = jax.grad(lambda x: dpo_loss(x, ref.astype(np.float32), mask, normalizer, beta)[0])(logp.astype(np.float32))
    _, h = dpo_float64(logp, ref, mask, beta)
    pairs = len(h)
    expected = np.zeros((B, T))
    for k, h_k in enumerate(h):
        weight = beta / (1.0 + np.exp(h_k)) / pairs  # beta sigmoid(-h) / P
        expected[2 * k] = np.where(mask[2 * k], -weight, 0.0)
        expected[2 * k + 1] = np.where(mask[2 * k + 1], weight, 0.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


def test_dpo_loss_stays_finite_for_huge_margins():
    logp, ref, mask = random_inputs(4)
    normalizer = mini_batch_normalizer(mask, np.zeros(B, bool))
    logp[1::2] -= 1e4  # every rejected response far less likely than under the reference
    loss, metrics = dpo_loss(logp.astype(np.float32), ref.astype(np.float32), mask, normalizer, 1.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(metrics["reward_accuracy"]) == 1.0
    loss, _ = dpo_loss(ref.astype(np.float32), logp.astype(np.float32), mask, normalizer, 1.0)
    assert np.isfinite(float(loss)) and float(loss) > 1e3


def test_micro_batches_keep_each_dpo_pair_together_and_in_order():
    """Pairs (2k, 2k + 1) of very different lengths: sorted by their longer row, never split or swapped."""
    from herl_jax.learner.micro_batches import micro_batches

    lengths = [9, 1, 2, 3, 8, 2, 1, 1]  # pairs: (9, 1), (2, 3), (8, 2), (1, 1)
    mask = np.arange(T)[None, :] < np.array(lengths)[:, None]
    batch = {"attention_mask": mask, "input_ids": np.zeros((B, T), np.int32)}
    rows = np.concatenate([r for r, _ in micro_batches(batch, 4, 1, rows_together=2)])
    assert rows.tolist() == [6, 7, 2, 3, 4, 5, 0, 1]
    with pytest.raises(ValueError, match="blocks of 2"):
        micro_batches(batch, 3, 1, rows_together=2)
