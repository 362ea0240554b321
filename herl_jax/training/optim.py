"""The optimizer: AdamW with global-norm gradient clipping, built from the ``optim`` sub-config.

Weight decay applies to every parameter (as torch.optim.AdamW over ``model.parameters()`` does, which
is what the PyTorch baseline and verl's FSDP actor run).
"""

from __future__ import annotations

import optax


def default_config():
    """The ``optim`` sub-config (an ml_collections ConfigDict); lr as in the paper (Table 4b)."""
    from ml_collections import ConfigDict  # lazy: device code does not otherwise need it

    return ConfigDict(
        dict(
            lr=1e-6,
            b1=0.9,
            b2=0.999,
            eps=1e-8,
            weight_decay=0.01,
            max_grad_norm=1.0,  # global norm of the mini-batch gradient, before AdamW
            warmup_steps=0,  # linear warm-up from 0 to lr over this many optimizer steps
        )
    )


def make_optimizer(cfg) -> optax.GradientTransformation:
    """clip_by_global_norm(max_grad_norm) then AdamW(lr, b1, b2, eps, weight_decay)."""
    lr = cfg.lr if not cfg.warmup_steps else optax.warmup_constant_schedule(0.0, cfg.lr, cfg.warmup_steps)
    return optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay),
    )
