"""Our loss and train step against the PyTorch baseline's (baselines/torch) on the same inputs
and weights: the loss, its metrics and its gradients agree to 1e-5 relative (fp32, CPU)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from baselines.torch import loss as torch_loss
from baselines.torch import train_step as torch_step
from herl_jax.models.hf_layout import tensor_specs
from herl_jax.learner import LossConfig, mini_batch_normalizer, policy_loss, token_logprobs
from tests.training.tiny import BUCKET, LOSS, STEP, random_batch

B, T, D, V = 6, 12, 8, 40
TEMPERATURE = 0.8
IS_REVISION = np.array([False, False, True, False, False, True])
SPANS = [(2, 8), (0, 12), (5, 4), (1, 1), (0, 0), (3, 9)]  # (first loss position, length); row 4 empty

# Every pair of switch values appears in some row (a pairwise covering array; test_loss.py runs the
# full product against float64 numpy).
SWITCHES = [
    ("seq_mean_token_mean", "ratio", "low_var_kl", None),
    ("seq_mean_token_mean", "prob", "k1", 3.0),
    ("seq_mean_token_mean", "ratio", "k2", 3.0),
    ("token_mean", "prob", "low_var_kl", 3.0),
    ("token_mean", "ratio", "k1", None),
    ("token_mean", "prob", "k2", None),
]


def _config_fields(agg_mode, shaping_x, kl_type, dual_clip_c, entropy_coef=0.01):
    return dict(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=dual_clip_c, shaping_x=shaping_x,
                shaping_gamma=1.0 if shaping_x == "ratio" else 0.1, kl_type=kl_type, kl_coef=0.05,
                entropy_coef=entropy_coef, agg_mode=agg_mode)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((B, T), bool)
    for b, (start, n) in enumerate(SPANS):
        mask[b, start : start + n] = True
    hidden = rng.normal(size=(B, T, D)).astype(np.float32)
    lm_head = rng.normal(size=(D, V)).astype(np.float32)
    logits = hidden @ lm_head / TEMPERATURE
    shifted = logits - logits.max(-1, keepdims=True)
    logp_all = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
    logp = np.take_along_axis(logp_all, targets[..., None], -1)[..., 0].astype(np.float32)
    return dict(
        hidden=hidden, lm_head=lm_head, targets=targets, mask=mask, logp=logp,
        entropy=-(np.exp(logp_all) * logp_all).sum(-1).astype(np.float32),
        # π_old and π_ref near π_θ, so ratios fall on both sides of the clip range
        old=(logp + rng.normal(size=(B, T)) * 0.5).astype(np.float32),
        ref=(logp + rng.normal(size=(B, T)) * 0.5).astype(np.float32),
        advantages=np.array([1.2, -0.7, 0.9, -1.5, 0.3, -0.4], np.float32),
    )


def _our_loss(x, cfg, logp, entropy):
    mask, is_revision = jnp.asarray(x["mask"]), jnp.asarray(IS_REVISION)
    return policy_loss(logp, jnp.asarray(x["old"]), jnp.asarray(x["advantages"]), is_revision, mask,
                       mini_batch_normalizer(mask, is_revision), cfg, ref_logprobs=jnp.asarray(x["ref"]),
                       entropy=entropy)


def _torch_loss(x, cfg, logp, entropy):
    mask, is_revision = torch.tensor(x["mask"]), torch.tensor(IS_REVISION)
    return torch_loss.policy_loss(logp, torch.tensor(x["old"]), torch.tensor(x["advantages"]), is_revision, mask,
                                  torch_loss.mini_batch_counts(mask, is_revision), cfg,
                                  ref_logprobs=torch.tensor(x["ref"]), entropy=entropy)


def _assert_close(ours, theirs, rtol=1e-5):
    theirs = np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())


@pytest.mark.parametrize("agg_mode,shaping_x,kl_type,dual_clip_c", SWITCHES)
def test_policy_loss_metrics_and_gradients_match_torch(agg_mode, shaping_x, kl_type, dual_clip_c):
    fields = _config_fields(agg_mode, shaping_x, kl_type, dual_clip_c)
    x = _inputs()
    (loss, metrics), (g_logp, g_entropy) = jax.value_and_grad(
        lambda lp, e: _our_loss(x, LossConfig(**fields), lp, e), argnums=(0, 1), has_aux=True
    )(jnp.asarray(x["logp"]), jnp.asarray(x["entropy"]))

    logp = torch.tensor(x["logp"], requires_grad=True)
    entropy = torch.tensor(x["entropy"], requires_grad=True)
    t_loss, t_metrics = _torch_loss(x, torch_loss.LossConfig(**fields), logp, entropy)
    t_loss.backward()

    np.testing.assert_allclose(float(loss), float(t_loss.detach()), rtol=1e-5)
    assert metrics.keys() == t_metrics.keys()
    for name, value in metrics.items():
        np.testing.assert_allclose(float(value), float(t_metrics[name]), rtol=1e-5, atol=1e-7, err_msg=name)
    _assert_close(g_logp, logp.grad)
    _assert_close(g_entropy, entropy.grad)
    assert 0 < float(metrics["clip_frac"]) < 1


@pytest.mark.parametrize("entropy_coef", [0.0, 0.01])
def test_loss_from_hidden_states_matches_torch(entropy_coef):
    """The whole chain: hidden states and LM head -> chunked log-probs and entropy -> loss, and its
    gradient w.r.t. the hidden states and the LM head, against torch's full-logits log_softmax."""
    fields = _config_fields("seq_mean_token_mean", "ratio", "low_var_kl", 3.0, entropy_coef)
    x = _inputs()

    def our_loss(hidden, lm_head):
        logp, entropy = token_logprobs(hidden, lm_head, jnp.asarray(x["targets"]), temperature=TEMPERATURE,
                                       chunk_size=5, with_entropy=True)
        return _our_loss(x, LossConfig(**fields), logp, entropy)[0]

    loss, (g_hidden, g_head) = jax.value_and_grad(our_loss, argnums=(0, 1))(
        jnp.asarray(x["hidden"]), jnp.asarray(x["lm_head"]))

    hidden = torch.tensor(x["hidden"], requires_grad=True)
    lm_head = torch.tensor(x["lm_head"], requires_grad=True)
    logp, entropy = torch_loss.token_logprobs(hidden @ lm_head, torch.tensor(x["targets"]), TEMPERATURE,
                                              entropy_grad=entropy_coef != 0)
    _assert_close(logp.detach(), x["logp"])
    t_loss, _ = _torch_loss(x, torch_loss.LossConfig(**fields), logp, entropy)
    t_loss.backward()

    np.testing.assert_allclose(float(loss), float(t_loss.detach()), rtol=1e-5)
    _assert_close(g_hidden, hidden.grad)
    _assert_close(g_head, lm_head.grad)


def test_same_switches_and_defaults():
    ours = {f.name: f.default for f in dataclasses.fields(LossConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(torch_loss.LossConfig)}
    assert ours == theirs


def _hf_tensors(cfg, params) -> dict[str, torch.Tensor]:
    """Our parameter tree (or a gradient of the same shape) under transformers' names and layouts."""
    tree = params.to_pure_dict()
    tensors = {}
    for spec in tensor_specs(cfg):
        value = tree
        for key in spec.path:
            value = value[key]
        stacked = np.asarray(value)
        for i in range(cfg.num_layers) if spec.per_layer else [None]:
            tensors[spec.hf_name.format(i=i)] = torch.tensor(spec.to_hf(stacked if i is None else stacked[i]))
    return tensors


class _RecordingOptimizer(torch.optim.Optimizer):
    """Keeps each parameter's gradient at step() and changes nothing (the twin of sgd_recording_gradient)."""

    def __init__(self, params):
        super().__init__(params, {})

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["grad"] = p.grad.detach().clone()


def test_train_step_gradients_match_torch(model, learner):
    """One mini-batch step of 4 micro-batches (every loss term on, a padding row, temperature 0.7):
    old log-probs, metrics and the gradient of every parameter match the torch step on the same weights."""
    batch = random_batch(seed=1, n=7, batch_size=8)
    state = learner.init_state(model)
    tensors = _hf_tensors(model.cfg, state.params)
    hf = model.cfg.to_hf_dict()
    torch_model = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model(hf.pop("model_type"), **hf), dtype=torch.float32)
    torch_model.load_state_dict(tensors, strict=True)

    logp = np.asarray(learner.compute_logprobs(state.params, batch, BUCKET))
    t_batch = {k: torch.from_numpy(v) for k, v in batch.items()}
    t_logp = torch_step.compute_logprobs(torch_model, t_batch, micro_batch_size=STEP.micro_batch_size,
                                         temperature=STEP.temperature)
    mask = batch["loss_mask"]
    _assert_close(logp[mask], t_logp.numpy()[mask])
    rng = np.random.default_rng(2)
    old, ref = ((logp + rng.normal(size=logp.shape) * 0.3).astype(np.float32) for _ in range(2))

    new_state, metrics = learner.optimizer_step(state, batch, old, ref, bucket_size=BUCKET)
    optimizer = _RecordingOptimizer(torch_model.parameters())
    t_metrics = torch_step.train_step(torch_model, optimizer, t_batch, torch.from_numpy(old), torch.from_numpy(ref),
                                      torch_loss.LossConfig(**dataclasses.asdict(LOSS)),
                                      micro_batch_size=STEP.micro_batch_size, max_grad_norm=float("inf"),
                                      temperature=STEP.temperature)

    assert float(metrics["clip_frac"]) > 0 and float(metrics["kl"]) > 0
    for name, value in t_metrics.items():
        np.testing.assert_allclose(float(metrics[name]), float(value), rtol=1e-5, atol=1e-7, err_msg=name)
    ours = _hf_tensors(model.cfg, new_state.opt_state)  # the recorded gradient
    names = dict(torch_model.named_parameters())
    assert ours.keys() == names.keys()
    for name, grad in ours.items():
        _assert_close(grad, optimizer.state[names[name]]["grad"])
