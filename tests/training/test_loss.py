"""The HeRL loss against an independent float64 numpy implementation of Eqs. 9-12 (+ KL, entropy)."""

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from herl_jax.learner.logprobs import token_logprobs
from herl_jax.learner.config import LossConfig, default_config
from herl_jax.learner.loss import mini_batch_normalizer, policy_loss

B, T, V = 6, 10, 7
IS_REVISION = np.array([False, False, False, True, False, False])
# (first loss position, number of loss tokens) per row; row 5 has no loss token at all.
SPANS = [(2, 6), (1, 9), (4, 3), (3, 5), (0, 1), (0, 0)]


def _objective_terms(lp, old, adv, is_rev, cfg):
    """Per-token objective (to maximize) of one sequence, from Eqs. 11 and 12."""
    rho = np.exp(lp - old)
    if is_rev:
        x = rho if cfg.shaping_x == "ratio" else np.exp(lp)
        return x / (x + cfg.shaping_gamma) * adv
    surrogate = np.minimum(rho * adv, np.clip(rho, 1 - cfg.clip_eps_low, 1 + cfg.clip_eps_high) * adv)
    if cfg.dual_clip_c is not None and adv < 0:
        surrogate = np.maximum(surrogate, cfg.dual_clip_c * adv)
    return surrogate


def _kl_terms(lp, ref, kl_type):
    d = lp - ref
    if kl_type == "k1":
        return d
    if kl_type == "k2":
        return d**2 / 2
    return np.clip(np.exp(-d) + d - 1, -10, 10)


def reference_loss(logp, old, ref, entropy, adv, is_revision, mask, cfg):
    """loss = -J + kl_coef * KL - entropy_coef * H, each aggregated over the whole batch."""
    per_seq = []  # (objective terms, kl terms, entropy terms) of each sequence with loss tokens
    for b in range(logp.shape[0]):
        t = np.flatnonzero(mask[b])
        if t.size == 0:
            continue
        per_seq.append(
            (
                _objective_terms(logp[b, t], old[b, t], adv[b], is_revision[b], cfg),
                _kl_terms(logp[b, t], ref[b, t], cfg.kl_type),
                entropy[b, t],
            )
        )

    def agg(k):
        if cfg.agg_mode == "seq_mean_token_mean":  # Eq. 9: mean over sequences of token means
            return np.mean([np.mean(s[k]) for s in per_seq])
        return np.sum([np.sum(s[k]) for s in per_seq]) / np.sum([s[k].size for s in per_seq])

    return -agg(0) + cfg.kl_coef * agg(1) - cfg.entropy_coef * agg(2)


def _fixture(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(B, T, V)) * 2.0
    targets = rng.integers(0, V, size=(B, T))
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    logp = np.take_along_axis(logp_all, targets[..., None], -1)[..., 0]
    entropy = -(np.exp(logp_all) * logp_all).sum(-1)
    mask = np.zeros((B, T), bool)
    for b, (start, n) in enumerate(SPANS):
        mask[b, start : start + n] = True
    old = logp + rng.normal(size=(B, T)) * 0.6
    ref = logp + rng.normal(size=(B, T)) * 0.4
    old[~mask], ref[~mask] = -np.inf, np.nan  # garbage outside the mask must not matter
    adv = np.array([1.3, -0.8, -1.6, 0.9, 0.4, 2.0])
    return dict(logits=logits, targets=targets, logp=logp, entropy=entropy, mask=mask, old=old, ref=ref, adv=adv)


def _jax_loss_fn(cfg):
    """(loss, metrics) and gradients w.r.t. the log-probs, the entropy and the logits.

    d_logp / d_entropy are zeros added to the log-probs / entropy, so their gradients are the
    gradients w.r.t. those inputs; the logits go through a plain fp32 log-softmax.
    """

    def loss_fn(d_logp, d_entropy, logits, targets, old, ref, adv, mask):
        logp_all = jax.nn.log_softmax(logits, axis=-1)
        logp = jnp.take_along_axis(logp_all, targets[..., None], -1)[..., 0] + d_logp
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1) + d_entropy
        norm = mini_batch_normalizer(mask, jnp.asarray(IS_REVISION))
        return policy_loss(logp, old, adv, jnp.asarray(IS_REVISION), mask, norm, cfg, ref_logprobs=ref,
                           entropy=entropy)

    return jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)


def _finite_difference(fn, x, h=1e-6):
    grad = np.zeros_like(x)
    for idx in zip(*np.nonzero(np.ones_like(x))):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (fn(up) - fn(down)) / (2 * h)
    return grad


SWITCHES = list(
    itertools.product(
        ["seq_mean_token_mean", "token_mean"], ["ratio", "prob"], ["low_var_kl", "k1", "k2"], [None, 3.0],
        [0.0, 0.01],
    )
)


@pytest.mark.parametrize("agg_mode,shaping_x,kl_type,dual_clip_c,entropy_coef", SWITCHES)
def test_loss_and_gradient_match_float64_reference(agg_mode, shaping_x, kl_type, dual_clip_c, entropy_coef):
    cfg = LossConfig(
        clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=dual_clip_c,
        shaping_gamma=1.0 if shaping_x == "ratio" else 0.1, shaping_x=shaping_x,
        kl_type=kl_type, kl_coef=0.05, entropy_coef=entropy_coef, agg_mode=agg_mode,
    )
    f = _fixture()
    zeros = np.zeros((B, T), np.float32)
    (loss, metrics), (g_logp, g_entropy, g_logits) = _jax_loss_fn(cfg)(
        zeros, zeros, jnp.asarray(f["logits"], jnp.float32), jnp.asarray(f["targets"]),
        *(jnp.asarray(f[k], jnp.float32) for k in ("old", "ref", "adv")), jnp.asarray(f["mask"]),
    )

    def ref_of(logp=f["logp"], entropy=f["entropy"]):
        return reference_loss(logp, f["old"], f["ref"], entropy, f["adv"], IS_REVISION, f["mask"], cfg)

    expected = ref_of()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)

    fd_logp = _finite_difference(lambda lp: ref_of(logp=lp), f["logp"])
    fd_entropy = _finite_difference(lambda e: ref_of(entropy=e), f["entropy"])
    scale = np.abs(fd_logp).max()
    np.testing.assert_allclose(np.asarray(g_logp), fd_logp, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(np.asarray(g_entropy), fd_entropy, rtol=1e-5, atol=1e-6 * scale)

    # Every masked position: exactly zero gradient, for the log-probs and for all its logits.
    masked = ~f["mask"]
    assert np.all(np.asarray(g_logp)[masked] == 0.0)
    assert np.all(np.asarray(g_logits)[masked] == 0.0)
    # The revision row learns through f (Eq. 12): its tokens get a gradient.
    assert np.all(np.asarray(g_logp)[IS_REVISION][f["mask"][IS_REVISION]] != 0.0)


def public_micro_token_mean_loss(logp, old, ref, entropy, adv, is_revision, mask, cfg, micro_size):
    """The public code's aggregation, re-derived (verl's token-mean with gradient accumulation): each
    micro-batch of ``micro_size`` consecutive rows averages ITS OWN loss tokens (policy term, KL and
    entropy alike), and the mini-batch loss is the mean of these over the micro-batches. A micro-batch
    without loss tokens (padding only, which the public code never has) is not counted."""
    losses = []
    for start in range(0, logp.shape[0], micro_size):
        rows = [b for b in range(start, start + micro_size) if mask[b].any()]
        if not rows:
            continue
        objective = np.concatenate([_objective_terms(logp[b, mask[b]], old[b, mask[b]], adv[b], is_revision[b], cfg)
                                    for b in rows])
        kl = np.concatenate([_kl_terms(logp[b, mask[b]], ref[b, mask[b]], cfg.kl_type) for b in rows])
        ent = np.concatenate([entropy[b, mask[b]] for b in rows])
        losses.append(-objective.mean() + cfg.kl_coef * kl.mean() - cfg.entropy_coef * ent.mean())
    return np.mean(losses)


def _jax_micro_loss_fn(cfg, micro_size):
    """(summed loss, summed metrics) over consecutive micro-batches, each normalized by the mini-batch
    ``Normalizer`` with K micro-batches, and the gradient w.r.t. the log-probs and the entropy."""

    def loss_fn(logp, entropy, old, ref, adv, mask):
        k = sum(bool(np.asarray(mask[i : i + micro_size]).any()) for i in range(0, B, micro_size))
        norm = mini_batch_normalizer(mask, jnp.asarray(IS_REVISION), num_micro_batches=k)
        parts = [policy_loss(*(x[i : i + micro_size] for x in (logp, old, adv, jnp.asarray(IS_REVISION), mask)),
                             norm, cfg, ref_logprobs=ref[i : i + micro_size], entropy=entropy[i : i + micro_size])
                 for i in range(0, B, micro_size)]
        metrics = {name: sum(p[1][name] for p in parts) for name in parts[0][1]}
        return sum(p[0] for p in parts), metrics

    return jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)


@pytest.mark.parametrize("micro_size", [2, 3])
@pytest.mark.parametrize("shaping_x,dual_clip_c", [("ratio", 3.0), ("prob", None)])
def test_micro_token_mean_matches_the_public_rule(micro_size, shaping_x, dual_clip_c):
    cfg = LossConfig(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=dual_clip_c, shaping_x=shaping_x,
                     shaping_gamma=1.0 if shaping_x == "ratio" else 0.1, kl_coef=0.05, entropy_coef=0.01,
                     agg_mode="micro_token_mean")
    f = _fixture()
    (loss, metrics), (g_logp, g_entropy) = _jax_micro_loss_fn(cfg, micro_size)(
        *(jnp.asarray(f[k], jnp.float32) for k in ("logp", "entropy", "old", "ref", "adv")), jnp.asarray(f["mask"]))

    def ref_of(logp=f["logp"], entropy=f["entropy"]):
        return public_micro_token_mean_loss(logp, f["old"], f["ref"], entropy, f["adv"], IS_REVISION, f["mask"],
                                            cfg, micro_size)

    expected = ref_of()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)
    # Not the whole-mini-batch token mean: the micro-batches' token counts differ.
    assert abs(expected - reference_loss(f["logp"], f["old"], f["ref"], f["entropy"], f["adv"], IS_REVISION,
                                         f["mask"], dataclasses.replace(cfg, agg_mode="token_mean"))) > 1e-3
    fd_logp = _finite_difference(lambda lp: ref_of(logp=lp), f["logp"])
    fd_entropy = _finite_difference(lambda e: ref_of(entropy=e), f["entropy"])
    scale = np.abs(fd_logp).max()
    np.testing.assert_allclose(np.asarray(g_logp), fd_logp, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(np.asarray(g_entropy), fd_entropy, rtol=1e-5, atol=1e-6 * scale)
    # Token fractions stay over the whole mini-batch, whatever the aggregation.
    rho = np.exp(f["logp"] - f["old"])[f["mask"]]
    np.testing.assert_allclose(float(metrics["ratio_mean"]), rho.mean(), rtol=1e-5)


def test_fixture_exercises_every_branch():
    f = _fixture()
    cfg = LossConfig(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=3.0, kl_coef=0.05)
    zeros = np.zeros((B, T), np.float32)
    _, metrics = _jax_loss_fn(cfg)(
        zeros, zeros, jnp.asarray(f["logits"], jnp.float32), jnp.asarray(f["targets"]),
        *(jnp.asarray(f[k], jnp.float32) for k in ("old", "ref", "adv")), jnp.asarray(f["mask"]),
    )[0]
    assert 0.0 < float(metrics["clip_frac"]) < 1.0
    assert float(metrics["dual_clip_frac"]) > 0.0
    assert float(metrics["ratio_max"]) > 3.0
    rho = np.exp(f["logp"] - f["old"])[3][f["mask"][3]]
    np.testing.assert_allclose(float(metrics["revision_weight_mean"]), np.mean(rho / (rho + 1.0)), rtol=1e-5)


def test_no_reference_policy_means_no_kl():
    f = _fixture()
    mask = jnp.asarray(f["mask"])
    args = (jnp.asarray(f["logp"], jnp.float32), jnp.asarray(f["old"], jnp.float32),
            jnp.asarray(f["adv"], jnp.float32), jnp.asarray(IS_REVISION), mask,
            mini_batch_normalizer(mask, jnp.asarray(IS_REVISION)))
    loss, metrics = policy_loss(*args, LossConfig(kl_coef=0.0))
    assert float(metrics["kl"]) == 0.0
    np.testing.assert_allclose(float(loss), float(metrics["pg_loss"]))
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(*args, LossConfig(kl_coef=1e-4))


def _micro_batch_fixture(seed=1, batch=8, length=16, dim=8, vocab=32):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(batch, length, dim)).astype(np.float32)
    lm_head = (rng.normal(size=(dim, vocab)) * 0.5).astype(np.float32)
    targets = rng.integers(0, vocab, size=(batch, length))
    mask = np.zeros((batch, length), bool)
    for b in range(batch):
        start = rng.integers(0, length // 2)
        mask[b, start : start + rng.integers(1, length - start + 1)] = True
    is_revision = np.arange(batch) % 4 == 3
    old = rng.normal(size=(batch, length)).astype(np.float32) * 0.3
    ref = rng.normal(size=(batch, length)).astype(np.float32) * 0.3
    adv = rng.normal(size=(batch,)).astype(np.float32)
    return hidden, lm_head, targets, mask, is_revision, old, ref, adv


@functools.partial(jax.jit, static_argnames="cfg")
def _micro_loss_and_grad(hidden, lm_head, targets, mask, is_revision, old, ref, adv, norm, cfg):
    def loss_fn(hidden, lm_head):
        logp, entropy = token_logprobs(hidden, lm_head, targets, chunk_size=4, with_entropy=True)
        old_lp = jax.lax.stop_gradient(logp) + old  # π_old near π_θ, so some ratios clip
        return policy_loss(logp, old_lp, adv, is_revision, mask, norm, cfg, ref_logprobs=logp + ref,
                           entropy=entropy)

    return jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(hidden, lm_head)


@pytest.mark.parametrize("agg_mode", ["seq_mean_token_mean", "token_mean"])
@pytest.mark.parametrize("k", [2, 4])
def test_micro_batches_with_the_mini_batch_normalizer_sum_to_the_full_batch(agg_mode, k):
    cfg = LossConfig(agg_mode=agg_mode, dual_clip_c=3.0, kl_coef=0.01, entropy_coef=0.01)
    hidden, lm_head, targets, mask, is_revision, old, ref, adv = _micro_batch_fixture()
    norm = mini_batch_normalizer(jnp.asarray(mask), jnp.asarray(is_revision))

    def loss_and_grad(hidden, lm_head, targets, mask, is_revision, old, ref, adv):
        return _micro_loss_and_grad(hidden, lm_head, targets, mask, is_revision, old, ref, adv, norm, cfg)

    (full_loss, full_metrics), (full_gh, full_gw) = loss_and_grad(hidden, lm_head, targets, mask, is_revision,
                                                                  old, ref, adv)
    size = hidden.shape[0] // k
    parts = [
        loss_and_grad(*(x[i * size : (i + 1) * size] for x in (hidden,)), lm_head,
                      *(x[i * size : (i + 1) * size] for x in (targets, mask, is_revision, old, ref, adv)))
        for i in range(k)
    ]
    loss = sum(float(p[0][0]) for p in parts)
    grad_w = sum(np.asarray(p[1][1], np.float64) for p in parts)
    grad_h = np.concatenate([np.asarray(p[1][0]) for p in parts])
    np.testing.assert_allclose(loss, float(full_loss), rtol=1e-6)
    np.testing.assert_allclose(grad_h, np.asarray(full_gh), rtol=1e-6, atol=1e-6 * np.abs(full_gh).max())
    np.testing.assert_allclose(grad_w, np.asarray(full_gw), rtol=1e-6, atol=1e-6 * np.abs(full_gw).max())
    for name in ("pg_loss", "kl", "entropy", "clip_frac", "ratio_mean", "revision_weight_mean"):
        total = sum(float(p[0][1][name]) for p in parts)
        np.testing.assert_allclose(total, float(full_metrics[name]), rtol=1e-5, atol=1e-7)
    assert max(float(p[0][1]["ratio_max"]) for p in parts) == pytest.approx(float(full_metrics["ratio_max"]))


def test_updates_raise_positive_and_lower_negative_sequences():
    """A few SGD steps on a toy bigram policy with fixed rollouts move log-probs the right way."""
    vocab, dim = 16, 8
    rng = np.random.default_rng(0)
    params = dict(embed=jnp.asarray(rng.normal(size=(vocab, dim)) * 0.3, jnp.float32),
                  head=jnp.asarray(rng.normal(size=(dim, vocab)) * 0.3, jnp.float32))
    # context token 0, then a response; each row uses its own tokens, so rows do not interfere.
    tokens = jnp.asarray([[0, 1, 2, 3], [0, 4, 5, 6], [0, 7, 8, 9], [0, 10, 11, 12], [0, 13, 14, 15]])
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    mask = jnp.ones(inputs.shape, bool)
    adv = jnp.asarray([1.0, -1.0, 1.0, -1.0, 1.0])
    is_revision = jnp.asarray([False, False, False, False, True])
    norm = mini_batch_normalizer(mask, is_revision)
    cfg = LossConfig(kl_coef=0.0)

    def seq_logprobs(params):
        return token_logprobs(params["embed"][inputs], params["head"], targets, chunk_size=2)[0].sum(-1)

    def loss_fn(params, old):
        logp = token_logprobs(params["embed"][inputs], params["head"], targets, chunk_size=2)[0]
        return policy_loss(logp, old, adv, is_revision, mask, norm, cfg)[0]

    old = token_logprobs(params["embed"][inputs], params["head"], targets, chunk_size=2)[0]
    before = seq_logprobs(params)
    grad_fn = jax.jit(jax.grad(loss_fn))
    for _ in range(5):
        grads = grad_fn(params, old)
        params = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    change = np.asarray(seq_logprobs(params) - before)
    assert np.all(change[np.asarray(adv) > 0] > 0)
    assert np.all(change[np.asarray(adv) < 0] < 0)


def test_config_round_trip():
    cfg = default_config().loss
    assert LossConfig(**cfg) == LossConfig()
    cfg.dual_clip_c = 3.0
    cfg.agg_mode = "token_mean"
    assert LossConfig(**cfg) == LossConfig(dual_clip_c=3.0, agg_mode="token_mean")
    with pytest.raises(ValueError):
        LossConfig(kl_type="k3")


@pytest.mark.parametrize("field,value", [
    ("clip_eps_low", 0.0), ("clip_eps_low", 1.0), ("clip_eps_high", 0.0), ("dual_clip_c", 1.0),
    ("dual_clip_c", 0.5), ("shaping_gamma", 0.0), ("shaping_x", "logit"), ("kl_type", "k3"),
    ("kl_coef", -1e-4), ("agg_mode", "seq_mean"),
])
def test_each_loss_rule_names_its_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}={value!r}: "):
        LossConfig(**{field: value})


def test_values_at_the_edge_of_each_rule_are_accepted():
    LossConfig(clip_eps_low=0.99, clip_eps_high=5.0, dual_clip_c=1.001, shaping_gamma=1e-3, kl_coef=0.0)
    LossConfig(dual_clip_c=None, agg_mode="micro_token_mean")
