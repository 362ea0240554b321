"""The optimizer and the training config: AdamW + global-norm clipping against torch's."""

import jax.numpy as jnp
import numpy as np
import optax
import torch

from herl_jax.learner import LearnerConfig, LossConfig, PPOConfig, default_config, make_optimizer
from herl_jax.learner.config import ObjectiveConfig


def test_adamw_with_clipping_and_warmup_matches_torch():
    cfg = default_config().optim
    cfg.update(lr=1e-2, b1=0.8, b2=0.95, eps=1e-6, weight_decay=0.1, max_grad_norm=1.0, warmup_steps=2)
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=(5,)).astype(np.float32)}
    # Gradient norms well above and below max_grad_norm, so clipping both acts and does not.
    grads = [{k: (rng.normal(size=v.shape) * scale).astype(np.float32) for k, v in params.items()}
             for scale in (3.0, 0.05, 2.0, 0.1, 5.0)]

    tx = make_optimizer(cfg)
    ours = {k: jnp.asarray(v) for k, v in params.items()}
    state = tx.init(ours)

    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.AdamW(theirs.values(), lr=cfg.lr, betas=(cfg.b1, cfg.b2), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, step / cfg.warmup_steps))

    for g in grads:
        updates, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, ours)
        ours = optax.apply_updates(ours, updates)
        for k, p in theirs.items():
            p.grad = torch.tensor(g[k])
        torch.nn.utils.clip_grad_norm_(theirs.values(), cfg.max_grad_norm)
        opt.step()
        schedule.step()
        for k in params:
            np.testing.assert_allclose(np.asarray(ours[k]), theirs[k].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(ours["w"]), params["w"])


def test_train_config_builds_the_learner_config():
    cfg = default_config()
    assert set(cfg) == {"objective", "loss", "optim", "ppo"}
    assert LearnerConfig.of(LossConfig(**cfg.loss), PPOConfig(**cfg.ppo), temperature=1.0) == LearnerConfig(
        LossConfig(), micro_batch_size=8, temperature=1.0, logprob_chunk_size=128)
    cfg.loss.agg_mode = "token_mean"
    cfg.ppo.update(micro_batch_size=4, logprob_chunk_size=64)
    assert LearnerConfig.of(LossConfig(**cfg.loss), PPOConfig(**cfg.ppo), temperature=0.7) == LearnerConfig(
        LossConfig(agg_mode="token_mean"), micro_batch_size=4, temperature=0.7, logprob_chunk_size=64)
    # The offline objectives score the model's own distribution: temperature 1 whatever the rollouts'.
    sft = ObjectiveConfig(kind="sft")
    assert LearnerConfig.of(LossConfig(), PPOConfig(), temperature=0.7, objective=sft) == LearnerConfig(
        LossConfig(), micro_batch_size=8, temperature=1.0, logprob_chunk_size=128, objective=sft)
