"""What a training run can check before its weights load, so a bad setting fails in seconds, not after the
model loaded and step 1 sampled: rubric needs vs the judge config, the judge's key variable, prompts per step
vs the training set, the mesh vs the devices, the compute dtype vs the platform, prompt + generation lengths vs
the model's context window, and a W&B project vs the wandb package.

Each check raises one ConfigError naming the config key and the rule. The data is loaded by the caller
first (cheap; its errors are DataError lines of their own) and passed in.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax

from herl_jax.data import Dataset, Example
from herl_jax.models.config import ModelConfig
from herl_jax.models.loading import resolve_source
from herl_jax.training.run_config import ConfigError, RunConfig


def check_before_loading(run: RunConfig, dataset: Dataset) -> None:
    """Raises ConfigError for the first setting this run cannot train with (see the module docstring)."""
    check_judge(run, dataset)
    check_batch(run, dataset)
    run.mesh.shape(jax.device_count())  # MeshError names the parallel.* key
    check_dtype(run.model.dtype, jax.default_backend())
    check_trackers(run)
    check_context(run, model_config_of(run.model.source))


def check_judge(run: RunConfig, dataset: Dataset) -> None:
    """Judged rubric items need `rubrics.judge`; a configured judge needs its key variable set."""
    judge = run.scorer.judge
    if judge is None:
        judged = [e for e in dataset.train + dataset.validation
                  if isinstance(e, Example) and any(i.judged for i in e.rubric.items)]
        if judged:
            raise ConfigError(f"config.rubrics.judge=None: {len(judged)} examples have judged rubric items "
                              f"(e.g. {judged[0].id!r} in {judged[0].source or 'the data'}); set rubrics.judge "
                              "to a judge endpoint (base_url, model, api_key_env)")
        return
    if not os.environ.get(judge.api_key_env):
        raise ConfigError(f"config.rubrics.judge.api_key_env={judge.api_key_env!r}: the environment variable "
                          f"${judge.api_key_env} is not set or empty (for a local server without auth, set it "
                          "to any value, e.g. EMPTY)")


def check_batch(run: RunConfig, dataset: Dataset) -> None:
    """A step takes `trainer.prompts_per_step` distinct training examples."""
    n = run.trainer.prompts_per_step
    if n > len(dataset.train):
        raise ConfigError(f"config.trainer.prompts_per_step={n}: more than the {len(dataset.train)} training "
                          f"examples read from {', '.join(dataset.config.train_files)}")


def check_trackers(run: RunConfig) -> None:
    """A W&B project needs the optional extra `wandb`."""
    project = run.trainer.wandb_project
    if project and importlib.util.find_spec("wandb") is None:
        raise ConfigError(f"config.trainer.wandb_project={project!r}: logging to Weights & Biases needs the wandb "
                          "package (pip install 'herl-jax[wandb]'); leave the key empty to log to TensorBoard only")


def check_dtype(dtype: str, platform: str) -> None:
    """float16 computes only on accelerators; XLA's CPU backend cannot run the update in it."""
    if dtype == "float16" and platform == "cpu":
        raise ConfigError("config.model.dtype='float16': not supported on CPU; use float32 (or bfloat16)")


def check_context(run: RunConfig, model: tuple[ModelConfig, str]) -> None:
    """Prompt + generated tokens of rollouts and revisions, and an offline objective's rows, must fit the model's
    position embeddings."""
    cfg, where = model
    objective = run.learner.objective
    if objective.offline and objective.max_length > cfg.max_position_embeddings:
        raise ConfigError(f"config.train.objective.max_length={objective.max_length}: exceeds the model's context "
                          f"window of {cfg.max_position_embeddings} tokens (max_position_embeddings in {where})")
    for name, section in (("rollout", run.rollout), ("revision", run.revision)):
        total = section.max_prompt_len + section.max_new_tokens
        if total > cfg.max_position_embeddings:
            raise ConfigError(
                f"config.{name}.max_new_tokens={section.max_new_tokens}: {name}.max_prompt_len + "
                f"{name}.max_new_tokens = {total} exceeds the model's context window of "
                f"{cfg.max_position_embeddings} tokens (max_position_embeddings in {where})")


def model_config_of(source: str) -> tuple[ModelConfig, str]:
    """(the source's ModelConfig, where it was read) from its config.json or GGUF metadata, no weights read."""
    kind, path = resolve_source(source)
    if kind == "gguf":
        from herl_jax.models.gguf_reader import GGUFCheckpoint

        return ModelConfig.from_hf_dict(GGUFCheckpoint(path).hf_config()), str(path)
    return ModelConfig.from_json_file(Path(path) / "config.json"), str(Path(path) / "config.json")
