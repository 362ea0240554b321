"""The training config, for config files and CLIs: `base_config()` (every key the trainer reads, paper values
as defaults), `validate(config)` (the typed `RunConfig`, or a ConfigError naming the key) and `parse_flags`.

Config files in configs/ start from `base_config()` and change what they need. The rules live with each
section's dataclass (herl_jax/training/run_config.py composes them); this module is the top floor's entry.
"""

from __future__ import annotations

from ml_collections import ConfigDict

from herl_jax.training.run_config import ConfigError, RunConfig, base_config, resolve

__all__ = ["ConfigError", "RunConfig", "base_config", "parse_flags", "validate"]


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing for the CLIs (their `flags_parser`): list and tuple config keys take
    `--config.KEY=a,b`, and a bad flag, key or config file raises a one-line UsageError (herl_jax.cli_flags)."""
    from herl_jax.cli_flags import parse_flags as parse

    return parse(argv)


def validate(config: ConfigDict) -> RunConfig:
    """The config checked and typed, before any model is loaded; ConfigError names the key for an unknown key
    or an invalid value."""
    return resolve(config)
