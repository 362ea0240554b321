"""What a training run can check before its weights load, so a bad setting fails in seconds, not after the
model loaded and step 1 sampled: rubric needs vs the judge config, the judge's key variable, prompts per step
vs the training set, the mesh vs the devices, the compute dtype vs the platform, prompt + generation lengths vs
the model's context window, a W&B project vs the wandb package, and, once the mesh is known, the memory plan
(herl_jax.memory_plan) vs a device's memory.

Each check raises one ConfigError naming the config key and the rule. The data is loaded by the caller
first (cheap; its errors are DataError lines of their own) and passed in.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import jax

from herl_jax.data import Dataset, Example
from herl_jax.memory_plan import GIB, MemoryPlan, SamplerCall, plan_memory, sampler_calls
from herl_jax.models.config import ModelConfig
from herl_jax.models.loading import model_config_of
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


# What sizes each phase of the plan, for the message of a run that cannot fit.
_PHASE_KEYS = {
    "sampling": "rollout.n, trainer.prompts_per_step, rollout/revision.max_new_tokens or .decode_slots",
    "training": "train.ppo.micro_batch_size or the rows' length (max_prompt_len + max_new_tokens), or split the "
                "weights over more devices (parallel.fsdp)",
}


def check_memory(run: RunConfig, num_devices: int) -> None:
    """The run's memory plan on `num_devices` devices must fit this machine (`memory_shortfall`)."""
    calls = sampler_calls(run.raw)
    largest_call = max(calls, key=lambda c: c.host_bytes, default=None)
    shortfall = memory_shortfall(plan_memory(run.raw, num_devices), largest_call, _PHASE_KEYS, Machine.here())
    if shortfall:
        raise ConfigError(shortfall)


@dataclasses.dataclass(frozen=True)
class Machine:
    """The memory a process has: one device's and the host's."""

    device_kind: str
    device_limit: int | None  # an accelerator's allocator limit; None on CPU, whose devices use the host's memory
    host: int  # physical memory
    local_devices: int
    processes: int

    @classmethod
    def here(cls) -> "Machine":
        device = jax.local_devices()[0]
        limit = (device.memory_stats() or {}).get("bytes_limit")
        return cls(device.device_kind, int(limit) if limit else None,
                   os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), jax.local_device_count(),
                   jax.process_count())


def memory_shortfall(plan: MemoryPlan, call: SamplerCall | None, keys: dict[str, str], machine: Machine) -> str | None:
    """Why `plan`, with its estimates at their lowest, cannot fit one of `machine`'s devices, or why the host
    arrays of the largest sampler call `call` cannot fit its host (on CPU, with the devices' share of the same
    memory); None when both can. A run past either would run out of memory in its first step. `keys`: per
    phase, the settings to lower, for the message."""
    least, phase = plan.least_peak
    largest = max((i for i in plan.items if i.phase == phase), key=lambda i: i.per_device)
    device_part = (f"{least / GIB:.1f} GiB per device, the most for {phase} ({largest.name}, "
                   f"{largest.per_device / GIB:.1f} GiB)")
    if machine.device_limit and least > machine.device_limit:
        return (f"cannot fit in memory: the plan needs at least {device_part}, and a {machine.device_kind} here "
                f"holds {machine.device_limit / GIB:.1f} GiB; lower {keys[phase]} (python -m herl_jax.plan prints a "
                "run's plan)")
    host_part = call.host_bytes // machine.processes if call else 0
    devices_part = 0 if machine.device_limit else least * machine.local_devices
    if host_part + devices_part <= machine.host:
        return None
    parts = ([f"{machine.local_devices} CPU devices x {device_part}"] if devices_part else []) + (
        [f"{host_part / GIB:.1f} GiB of host arrays for the {call.name} call's {call.rows} rows x {call.max_new} "
         "tokens"] if host_part else [])
    return (f"cannot fit in memory: it needs at least {(host_part + devices_part) / GIB:.1f} GiB of this host's "
            f"{machine.host / GIB:.1f} GiB ({'; '.join(parts)}); lower "
            f"{keys['sampling' if host_part > devices_part else phase]} (python -m herl_jax.plan prints a run's plan)")
