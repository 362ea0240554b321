"""The base training config (all keys, paper defaults): herl_jax/config.py `base_config()`.

  python -m herl_jax.train --config configs/base.py --workdir runs/x --config.model.source=/path/to/hf
"""

from herl_jax.config import base_config


def get_config():
    return base_config()
