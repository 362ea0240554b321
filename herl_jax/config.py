"""The training config: its base (every key the trainer reads, paper values as defaults) and validation.

Config files in configs/ start from `base_config()` and change what they need; `validate(config)` runs
before any model is loaded and names the offending key for an unknown key or an invalid value.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from ml_collections import ConfigDict

from herl_jax import herl, parallel, training
from herl_jax.data import default_config as data_config
from herl_jax.herl.config import variant_from_config
from herl_jax.models.config import ATTENTION_IMPLS, DTYPES
from herl_jax.rubrics import ScorerConfig
from herl_jax.training.loss import LossConfig


class ConfigError(ValueError):
    """An unknown key or an invalid value in the training config."""


def base_config() -> ConfigDict:
    c = ConfigDict()
    c.model = ConfigDict(dict(
        source="smollm2-135m-instruct",  # HF checkpoint dir, .gguf file or built-in name
        dtype="bfloat16",  # compute dtype; master params and optimizer state stay float32
        attention_impl="auto",  # auto | xla | cudnn
        remat=True,  # recompute layer activations in the backward pass
    ))
    # Rollouts (ALGORITHM.md §8: N = 7 for HeRL, 8 for RLVR; temperature 1, top-p 1, top-k off).
    c.rollout = ConfigDict(dict(
        n=7, max_new_tokens=4096, temperature=1.0, top_p=1.0, top_k=0, max_prompt_len=2048, prompt_bucket=128,
    ))
    # Revisions of the top failed rollouts; the public code samples them like the rollouts.
    c.revision = ConfigDict(dict(
        max_new_tokens=4096, temperature=1.0, top_p=1.0, top_k=0, max_prompt_len=8192, prompt_bucket=256,
    ))
    c.herl = herl.default_config()  # variant, alpha, group mode, revise-prompt templates
    c.train = training.default_config()  # loss (gamma, clip, KL), optim (AdamW), ppo (mini/micro-batches)
    # Rubric scoring (herl_jax.rubrics.ScorerConfig); `judge` is None for programmatic-only rubrics, or a
    # dict of JudgeConfig fields (base_url, model, api_key_env, ...).
    c.rubrics = ConfigDict(dict(
        negative_weights="healthbench", unscored="drop", workers=2, check_time_limit_s=5.0, loose=False,
        judge=None,
    ))
    c.data = data_config()
    c.trainer = ConfigDict(dict(
        steps=500,  # RL steps, each: sample -> score -> revise -> update
        prompts_per_step=64,  # the paper's PPO mini-batch of 64 prompts
        # Training micro-batches group rows of similar length, each padded to a multiple of this (bounded
        # recompiles): rollouts are not padded to the length of a long revise prompt.
        sequence_bucket=256,
        # Rollouts (and revisions) are sampled in this many pieces; the host scores piece k while the
        # device samples piece k + 1. 1 = one batch, no overlap (best when scoring is cheap).
        score_overlap_chunks=4,
        seed=0,
        log_every=1,
        validate_every=50,  # 0: never
        validation_prompts=64,
        checkpoint_every=25,
        keep_checkpoints=3,
        export_final=True,  # write the final policy as a HF checkpoint to WORKDIR/export
        run_name="train",  # TensorBoard run name (WORKDIR/tensorboard/RUN_NAME); sweeps set one per run
    ))
    # The device mesh (herl_jax.parallel): data / fsdp / tensor sizes, one of them -1 to fill every device
    # of every process. Default: FSDP over all devices (one device: no sharding).
    c.parallel = parallel.default_config()
    return c


# Subtrees whose contents are checked by their own dataclass rather than against the base keys.
_FREE_FORM = ("rubrics.judge", "herl.prompt.templates")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing for the CLIs, with a `--config.KEY=...` override of a key the config does not
    have reported in one line (ml_collections raises a bare AttributeError from deep inside)."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError) as e:
        overrides = " ".join(a for a in argv if a.startswith("--config."))
        message = str(e.args[0] if e.args else e)
        key = re.search(r"[\w.-]+", message)  # ml_collections quotes the missing key, then may suggest one
        hint = re.search(r'Did you mean "([^"]+)"', message)
        name = key.group(0) if key else message
        suggestion = f" (did you mean {hint.group(1)!r}?)" if hint else ""
        sys.exit(f"config error: the config has no key {name!r}{suggestion}; overrides given: {overrides}")


def validate(config: ConfigDict) -> None:
    """Raises ConfigError naming the key for an unknown key or an invalid value."""
    unknown = sorted(set(_flat_keys(config)) - set(_flat_keys(base_config())))
    unknown = [k for k in unknown if not k.startswith(_FREE_FORM)]
    if unknown:
        raise ConfigError(f"unknown config keys: {unknown}")

    def need(ok: bool, key: str, rule: str) -> None:
        if not ok:
            value = config
            for part in key.split("."):
                value = value[part]
            raise ConfigError(f"config.{key}={value!r}: {rule}")

    need(config.model.dtype in DTYPES, "model.dtype", f"expected one of {DTYPES}")
    need(config.model.attention_impl in ATTENTION_IMPLS, "model.attention_impl", f"expected one of {ATTENTION_IMPLS}")
    for name in ("rollout", "revision"):
        s = config[name]
        need(s.max_new_tokens >= 1, f"{name}.max_new_tokens", "must be >= 1")
        need(s.temperature > 0, f"{name}.temperature", "must be > 0 (RL needs sampling)")
        need(0 < s.top_p <= 1, f"{name}.top_p", "must be in (0, 1]")
        need(s.top_k >= 0, f"{name}.top_k", "must be >= 0 (0 = off)")
    need(config.rollout.n >= 2, "rollout.n", "a group needs at least 2 rollouts (Eq. 10 divides by the std)")
    try:
        variant = variant_from_config(config.herl)
    except ValueError as e:
        raise ConfigError(f"config.herl.variant: {e}") from None
    need(config.herl.alpha >= 0, "herl.alpha", "must be >= 0")
    need(config.herl.group_mode in ("append", "replace"), "herl.group_mode", "expected append or replace")
    need(config.herl.max_candidates >= 1, "herl.max_candidates", "must be >= 1")
    need(config.herl.prompt.template in config.herl.prompt.templates, "herl.prompt.template",
         f"expected one of {sorted(config.herl.prompt.templates)}")

    loss = config.train.loss
    need(loss.shaping_gamma > 0, "train.loss.shaping_gamma", "gamma must be > 0")
    need(0 < loss.clip_eps_low < 1, "train.loss.clip_eps_low", "must be in (0, 1)")
    need(loss.clip_eps_high > 0, "train.loss.clip_eps_high", "must be > 0")
    need(loss.dual_clip_c is None or loss.dual_clip_c > 1, "train.loss.dual_clip_c", "must be None or > 1")
    need(loss.kl_coef >= 0, "train.loss.kl_coef", "must be >= 0")
    try:
        LossConfig.from_config(loss)
    except ValueError as e:
        raise ConfigError(f"config.train.loss: {e}") from None
    need(config.train.optim.lr > 0, "train.optim.lr", "must be > 0")
    need(config.train.optim.max_grad_norm > 0, "train.optim.max_grad_norm", "must be > 0")

    ppo, t = config.train.ppo, config.trainer
    need(t.prompts_per_step >= 1, "trainer.prompts_per_step", "must be >= 1")
    need(t.steps >= 1, "trainer.steps", "must be >= 1")
    group = config.rollout.n + (1 if variant.revise and config.herl.group_mode == "append" else 0)
    rows = t.prompts_per_step * group
    need(ppo.mini_batch_size >= 1 and rows % ppo.mini_batch_size == 0, "train.ppo.mini_batch_size",
         f"must divide the batch of {rows} rows (trainer.prompts_per_step x group size {group})")
    need(ppo.micro_batch_size >= 1 and ppo.mini_batch_size % ppo.micro_batch_size == 0,
         "train.ppo.micro_batch_size", f"must divide train.ppo.mini_batch_size={ppo.mini_batch_size}")
    need(ppo.epochs >= 1, "train.ppo.epochs", "must be >= 1")
    need(ppo.temperature == config.rollout.temperature, "train.ppo.temperature",
         f"must equal rollout.temperature={config.rollout.temperature} (the trainer recomputes the "
         "sampler's log-probs)")
    for key in ("checkpoint_every", "keep_checkpoints", "log_every", "sequence_bucket", "score_overlap_chunks"):
        need(t[key] >= 1, f"trainer.{key}", "must be >= 1")
    need(t.validate_every >= 0, "trainer.validate_every", "must be >= 0 (0 = never)")
    try:
        ScorerConfig.from_config(config.rubrics)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config.rubrics: {e}") from None
    try:
        parallel.MeshConfig.from_config(config.parallel)
    except parallel.MeshError as e:
        raise ConfigError(f"config.{e}") from None


def _flat_keys(config: Any, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, (ConfigDict, dict)) and value:
            keys += _flat_keys(value, name + ".")
        else:
            keys.append(name)
    return keys
