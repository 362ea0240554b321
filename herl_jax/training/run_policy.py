"""Any step's policy out of a run's workdir: which checkpoint (a step, `latest` or `best`), its parameters
as a Decoder, and its export as a Hugging Face directory.

`best` is the checkpointed step with the highest `validation/reward_mean` in WORKDIR/metrics.jsonl (the
earliest of equals). Only the parameters are read (no optimizer state), verified against the checksums
written at save (checkpoints.read_params); the model's shapes and tokenizer come from the run's
`model.source` in WORKDIR/config.json. `herl_jax.export`, `herl_jax.evaluate --checkpoint NAME=WORKDIR@STEP`
and the trainer's `export_best` go through here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import secrets
import shutil
from pathlib import Path

import jax
from flax import nnx

from herl_jax.models import Decoder, export_hf, load_tokenizer
from herl_jax.models.loading import model_config_of
from herl_jax.own_files import refuse_link, write_file
from herl_jax.training.checkpoints import CheckpointError, read_params, saved_steps
from herl_jax.training.metrics_writer import METRICS_FILE
from herl_jax.step.validation_keys import VALIDATION_REWARD
from herl_jax.training.run_record import CONFIG_FILE

STEP_CHOICES = ("latest", "best")  # besides a step number
EXPORT_RECORD = "herl_export.json"  # in an export: the run and step it holds
# WORKDIR@STEP: a run's checkpoint where a policy source is expected (evaluate --checkpoint).
_RUN_SPEC = re.compile(rf"^(?P<workdir>.+)@(?P<step>\d+|{'|'.join(STEP_CHOICES)})$")


@dataclasses.dataclass(frozen=True)
class RunCheckpoint:
    """A checkpoint a run saved: WORKDIR/checkpoints/STEP. Spelled `WORKDIR@STEP` (absolute WORKDIR)."""

    workdir: Path
    step: int

    @property
    def directory(self) -> Path:
        return self.workdir / "checkpoints" / str(self.step)

    def __str__(self) -> str:
        return f"{self.workdir}@{self.step}"


def parse_run_spec(source: str) -> tuple[str, str] | None:
    """(workdir, step) of `WORKDIR@STEP` (STEP: a number, `latest` or `best`), or None for any other source
    (an existing path is a path, even with an @ in its name)."""
    match = _RUN_SPEC.match(source)
    if match is None or Path(source).exists():
        return None
    return match["workdir"], match["step"]


def find_checkpoint(workdir: str | Path, step: str) -> RunCheckpoint:
    """The checkpoint `step` (a number, `latest` or `best`) of the run in `workdir`; a CheckpointError (one
    line) when the workdir, or a checkpoint of that step, is not there. Reads no weights."""
    workdir = Path(workdir).absolute()
    if not (workdir / CONFIG_FILE).is_file():
        raise CheckpointError(f"{workdir} is not a run's workdir (it has no {CONFIG_FILE})")
    steps = saved_steps(workdir / "checkpoints")
    if not steps:
        raise CheckpointError(f"{workdir / 'checkpoints'} holds no checkpoint")
    if step == "latest":
        return RunCheckpoint(workdir, steps[-1])
    if step == "best":
        return RunCheckpoint(workdir, _best_checkpointed_step(workdir, steps))
    if not step.isdigit() or int(step) not in steps:
        raise CheckpointError(f"{workdir / 'checkpoints'} has no checkpoint of step {step} (it has steps "
                              f"{', '.join(map(str, steps))}; or use latest, best)")
    return RunCheckpoint(workdir, int(step))


def validation_rewards(workdir: Path, up_to: int | None = None) -> dict[int, float]:
    """step -> the finite `validation/reward_mean` logged in WORKDIR/metrics.jsonl (steps <= `up_to`)."""
    path = workdir / METRICS_FILE
    rewards = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
            step, reward = int(record["step"]), float(record[VALIDATION_REWARD])
        except (ValueError, KeyError, TypeError):  # a step without validation, or a line torn by a kill
            continue
        if math.isfinite(reward) and (up_to is None or step <= up_to):
            rewards[step] = reward
    return rewards


def best_step(rewards: dict[int, float]) -> int | None:
    """The step of the highest reward (the earliest of equals), or None when there is none."""
    return min(rewards, key=lambda step: (-rewards[step], step), default=None)


def _best_checkpointed_step(workdir: Path, steps: list[int]) -> int:
    rewards = validation_rewards(workdir)
    best = best_step({step: rewards[step] for step in steps if step in rewards})
    if best is None:
        raise CheckpointError(f"no checkpointed step of {workdir} has a {VALIDATION_REWARD} in its {METRICS_FILE} "
                              f"(checkpoints: {', '.join(map(str, steps))}; validated steps: "
                              f"{', '.join(map(str, sorted(rewards))) or 'none'}); name a step instead")
    return best


def run_model_source(workdir: Path) -> str:
    """The `model.source` the run in `workdir` trained (its config.json)."""
    path = workdir / CONFIG_FILE
    try:
        return str(json.loads(path.read_text())["model"]["source"])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path}: no model.source in it; cannot tell the model's shapes") from None


def load_checkpoint_policy(checkpoint: RunCheckpoint, dtype: str = "float32", attention_impl: str = "auto",
                           device: jax.Device | None = None):
    """(Decoder, tokenizer) of a run's checkpoint: its parameters in `dtype` (cast from the float32 masters)
    on `device` (default: JAX's first device), the shapes and tokenizer of the run's model.source."""
    source = run_model_source(checkpoint.workdir)
    try:
        cfg, _ = model_config_of(source)
    except FileNotFoundError as e:
        raise CheckpointError(f"{checkpoint.workdir / CONFIG_FILE}: {e}") from None
    cfg = cfg.replace(dtype=dtype, param_dtype=dtype, attention_impl=attention_impl)
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Decoder(cfg)))
    placed = jax.sharding.SingleDeviceSharding(device or jax.devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=placed), abstract)
    params = read_params(checkpoint.directory, abstract)
    return nnx.merge(graphdef, params), load_tokenizer(source)


def write_export(model: Decoder, tokenizer, target: Path, record: dict) -> None:
    """The HF directory of `model` (herl_jax.models.export_hf) at `target`, with `record` (the run and step
    it holds) in its herl_export.json. Written in full beside `target`, then renamed over it: an earlier
    export there is replaced, and no reader sees half of one. Call it on every process (export_hf gathers
    sharded parameters); process 0 writes."""
    refuse_link(target)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    try:
        export_hf(model, partial, tokenizer)
        if jax.process_index() != 0:
            return
        write_file(partial / EXPORT_RECORD, json.dumps(record, indent=1) + "\n")
        earlier = target.with_name(f".{target.name}.{secrets.token_hex(6)}.replaced")
        if target.exists() and any(target.iterdir()):
            target.rename(earlier)
        partial.rename(target)  # onto no folder or an empty one
        shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
