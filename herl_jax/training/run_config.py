"""The training run's config: its base (every key the trainer reads, paper values as defaults) and its typed,
checked form.

Config files in configs/ start from `base_config()` and change what they need. `resolve(config)` turns the
ml_collections ConfigDict into a `RunConfig` of frozen dataclasses, once, before any model is loaded. Each
section's dataclass owns its rules (`SampleSection`, `HerlConfig`, `LossConfig`, `PPOConfig`, `TrainerSection`,
...); `resolve` adds only the unknown-key check and the rules that span sections, and names the offending key
(`config.SECTION.KEY=VALUE: rule`) in one `ConfigError`. Derived values are derived here, not configured: the
update's temperature is the rollouts', its shuffling seed the run's.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from ml_collections import ConfigDict

from herl_jax import herl, parallel
from herl_jax.data import DataConfig
from herl_jax.data import default_config as data_config
from herl_jax.errors import UserError
from herl_jax.herl.config import HerlConfig
from herl_jax.learner import config as train_config
from herl_jax.learner.config import LearnerConfig, LossConfig, ObjectiveConfig, OptimConfig, PPOConfig
from herl_jax.models.config import ModelSection
from herl_jax.rubrics import ScorerConfig
from herl_jax.sections import build_section, check, section_config
from herl_jax.step.config import SampleSection

class ConfigError(UserError, ValueError):
    """An unknown key or an invalid value in the training config."""


_section = functools.partial(build_section, ConfigError)


def base_config() -> ConfigDict:
    """Every section's defaults, from its dataclass."""
    c = ConfigDict()
    c.model = section_config(ModelSection())
    # Rollouts (docs/algorithm.md §8: N = 7 for HeRL, 8 for RLVR; temperature 1, top-p 1, top-k off).
    c.rollout = section_config(SampleSection(n=7, prompt_bucket=128))
    # Revisions of the top failed rollouts, one each (no `n` key), sampled like the rollouts (the public
    # code's); their prompts (revise template + instruction + feedback + draft) are longer.
    c.revision = section_config(SampleSection(max_prompt_len=8192, prompt_bucket=256), exclude=("n",))
    c.herl = herl.default_config()  # variant, alpha, group mode, revise-prompt templates
    c.train = train_config.default_config()  # loss (gamma, clip, KL), optim (AdamW), ppo (mini/micro-batches)
    # Rubric scoring; `judge` is None for programmatic-only rubrics, or a dict of JudgeConfig fields
    # (base_url, model, api_key_env, ...).
    c.rubrics = section_config(ScorerConfig())
    c.data = data_config()
    c.trainer = section_config(TrainerSection())
    # The device mesh (herl_jax.parallel): data / fsdp / tensor sizes, one of them -1 to fill every device
    # of every process. Default: FSDP over all devices (one device: no sharding).
    c.parallel = parallel.default_config()
    return c


@dataclasses.dataclass(frozen=True)
class TrainerSection:
    """The loop around the RL step: how many steps, how big, how often to validate, log and save."""

    steps: int = 500  # RL steps, each: sample -> score -> revise -> update
    prompts_per_step: int = 64  # the paper's PPO mini-batch of 64 prompts
    # Training micro-batches group rows of similar length, each padded to a multiple of this (bounded
    # recompiles): rollouts are not padded to the length of a long revise prompt.
    sequence_bucket: int = 256
    # Rollouts (and revisions) are sampled in this many pieces; the host scores piece k while the device
    # samples piece k + 1. 1 = one batch, no overlap (best when scoring is cheap).
    score_overlap_chunks: int = 4
    seed: int = 0  # the run's seed: every other seed (sampling, groups, shuffling) derives from it
    log_every: int = 1
    validate_every: int = 50  # 0: never
    validation_prompts: int = 64
    # Every this many steps, a few groups as text (prompt, rollouts, revise prompt, revision, rewards before and
    # after the bonus, advantages) go to WORKDIR/samples.jsonl and TensorBoard's text tab (step/group_samples.py).
    log_samples_every: int = -1  # -1: at every validation step (validate_every); 0: never
    log_samples_groups: int = 4  # groups shown per logging step; revised groups first
    checkpoint_every: int = 25
    keep_checkpoints: int = 3
    export_final: bool = True  # write the final policy as a HF checkpoint to WORKDIR/export
    # Also keep the policy of the best validation step so far in WORKDIR/export_best (replaced at each new best).
    export_best: bool = False
    run_name: str = "train"  # TensorBoard run name (WORKDIR/tensorboard/RUN_NAME); sweeps set one per run
    # Weights & Biases project that also receives the metrics, samples and config ("" = off; the optional extra
    # `wandb`; training/wandb_log.py). WANDB_MODE=offline writes the run under WORKDIR/wandb without a network.
    wandb_project: str = ""
    # JAX's persistent compilation cache, shared by reruns and a sweep's runs ("" = off; training/compile_cache.py)
    compilation_cache_dir: str = "~/.cache/herl-jax/xla"
    # A run stops as failed (exit 1, no FINISHED, no export) after this many steps in a row whose update was
    # skipped for a non-finite loss or gradient norm, or that had no trainable group (training/run_health.py).
    max_nonfinite_steps: int = 3
    max_empty_steps: int = 5
    # Resume a checkpointed run with a config that differs from its config.json (also: train
    # --allow_config_change); the keys that may always change are run_record.RESUMABLE_KEYS.
    allow_config_change: bool = False

    def __post_init__(self):
        positive = ("steps", "prompts_per_step", "checkpoint_every", "keep_checkpoints", "log_every",
                    "sequence_bucket", "score_overlap_chunks", "max_nonfinite_steps", "max_empty_steps",
                    "log_samples_groups")
        check(self, [(getattr(self, k) >= 1, k, "must be >= 1") for k in positive]
              + [(self.validate_every >= 0, "validate_every", "must be >= 0 (0 = never)"),
                 (self.validation_prompts >= 0, "validation_prompts", "must be >= 0"),
                 (self.log_samples_every >= -1, "log_samples_every",
                  "must be >= 0 (0 = never), or -1 (at every validation step)")])

    def logs_samples_at(self, step: int) -> bool:
        """Whether step ``step`` (numbered from 1) writes its samples (log_samples_every; -1: validate_every)."""
        every = self.validate_every if self.log_samples_every == -1 else self.log_samples_every
        return every > 0 and step % every == 0


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every section of a training run, typed and checked; ``raw`` is the ConfigDict it came from (dumped
    beside the run, secrets redacted)."""

    raw: ConfigDict
    model: ModelSection
    rollout: SampleSection
    revision: SampleSection
    herl: HerlConfig
    learner: LearnerConfig  # the jitted update's static settings (loss, micro-batch, temperature)
    ppo: PPOConfig
    optim: OptimConfig
    scorer: ScorerConfig
    data: DataConfig
    trainer: TrainerSection
    mesh: parallel.MeshConfig

    @property
    def group_size(self) -> int:
        """Members of one prompt's training group: N, plus the appended revision when there is one."""
        return self.rollout.n + self.herl.group_size_extra

    @property
    def rows_per_example(self) -> int:
        """Training rows per example of a step: its group (RL), or the row / pair of an offline objective."""
        objective = self.learner.objective
        return objective.rows_per_example if objective.offline else self.group_size


# Subtrees whose contents are checked by their own dataclass rather than against the base keys.
_FREE_FORM = ("rubrics.judge", "herl.prompt.templates")


def resolve(config: ConfigDict) -> RunConfig:
    """The typed run config; raises ConfigError naming the key for an unknown key or an invalid value."""
    unknown = sorted(set(_flat_keys(config)) - set(_flat_keys(base_config())))
    unknown = [k for k in unknown if not k.startswith(_FREE_FORM)]
    if unknown:
        raise ConfigError(f"unknown config keys: {unknown}")
    trainer = _section("trainer", TrainerSection, config.trainer)
    rollout = _section("rollout", SampleSection, config.rollout)
    loss = _section("train.loss", LossConfig, config.train.loss)
    ppo = _section("train.ppo", lambda c: PPOConfig(**dict(c), seed=trainer.seed), config.train.ppo)
    sections = dict(
        raw=config, model=_section("model", ModelSection, config.model), rollout=rollout,
        revision=_section("revision", SampleSection, config.revision),
        herl=_section("herl", HerlConfig, config.herl),
        learner=LearnerConfig.of(loss, ppo, temperature=rollout.temperature,
                                 objective=_section("train.objective", ObjectiveConfig, config.train.objective)),
        ppo=ppo,
        optim=_section("train.optim", OptimConfig, config.train.optim),
        scorer=_section("rubrics", ScorerConfig.from_config, config.rubrics),
        data=_section("data", DataConfig.from_config, config.data), trainer=trainer,
        mesh=_section("parallel", parallel.MeshConfig.from_config, config.parallel))
    run = RunConfig(**sections)
    _check_across_sections(run)
    return run


def _check_across_sections(run: RunConfig) -> None:
    rows = run.trainer.prompts_per_step * run.rows_per_example
    mini, micro = run.ppo.mini_batch_size, run.ppo.micro_batch_size
    objective = run.learner.objective
    try:
        check(run.raw, [
            (run.rollout.n >= 2, "rollout.n", "a group needs at least 2 rollouts (Eq. 10 divides by the std)"),
            (rows % mini == 0, "train.ppo.mini_batch_size",
             f"must divide the batch of {rows} rows (trainer.prompts_per_step x group size {run.group_size})"),
            (mini % micro == 0, "train.ppo.micro_batch_size", f"must divide train.ppo.mini_batch_size={mini}"),
        ] + (_offline_rules(run, rows) if objective.offline else [
            (run.data.format not in OFFLINE_FORMATS, "data.format",
             "holds given responses, no rubric: set train.objective.kind to it, or a rubric format (hir, rar, "
             "ifeval) for RL"),
        ]))
    except ValueError as e:  # "KEY=VALUE: rule", KEY from the top of the config
        raise ConfigError(f"config.{e}") from None


OFFLINE_FORMATS = ("sft", "dpo")  # data.format of the offline objectives: the objective's own name


def _offline_rules(run: RunConfig, rows: int) -> list[tuple[bool, str, str]]:
    """SFT / DPO: their own data, one optimizer step per batch, pairs whole in a micro-batch, and validation only on
    rubric-scored files."""
    kind = run.learner.objective.kind
    validation_format = run.data.validation_format or run.data.format
    return [
        (run.data.format == kind, "data.format", f"must be {kind!r} for train.objective.kind={kind!r}"),
        (run.ppo.mini_batch_size == rows, "train.ppo.mini_batch_size",
         f"must be the batch of {rows} rows (trainer.prompts_per_step x {run.rows_per_example}): one optimizer "
         f"step per batch for train.objective.kind={kind!r}"),
        (run.ppo.micro_batch_size % run.rows_per_example == 0, "train.ppo.micro_batch_size",
         "must be even: a DPO pair (chosen, rejected) stays in one micro-batch"),
        (run.trainer.validate_every == 0 or (bool(run.data.validation_files)
                                             and validation_format not in OFFLINE_FORMATS),
         "trainer.validate_every", f"validation of train.objective.kind={kind!r} scores replies against a rubric: "
         "set data.validation_files and data.validation_format (hir, rar or ifeval), or validate_every=0"),
    ]


def _flat_keys(config: Any, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, (ConfigDict, dict)) and value:
            keys += _flat_keys(value, name + ".")
        else:
            keys.append(name)
    return keys
