"""The ``train`` config: the ``loss``, ``optim`` and ``ppo`` sub-configs together."""

from __future__ import annotations

from herl_jax.training import loss, optim, update


def default_config():
    """An ml_collections ConfigDict with the paper's defaults (see each sub-config's module)."""
    from ml_collections import ConfigDict  # lazy: host-only dependency

    return ConfigDict(
        dict(loss=loss.default_config(), optim=optim.default_config(), ppo=update.default_config())
    )
