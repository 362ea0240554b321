"""The optimizer: AdamW with global-norm gradient clipping, built from the ``train.optim`` section (OptimConfig).

Weight decay applies to every parameter (as torch.optim.AdamW over ``model.parameters()`` does, which
is what the PyTorch baseline and verl's FSDP actor run).
"""

from __future__ import annotations

import optax


def make_optimizer(cfg) -> optax.GradientTransformation:
    """clip_by_global_norm(max_grad_norm) then AdamW(lr, b1, b2, eps, weight_decay)."""
    lr = cfg.lr if not cfg.warmup_steps else optax.warmup_constant_schedule(0.0, cfg.lr, cfg.warmup_steps)
    return optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay),
    )
