"""The HeRL training loop — the one place where host code and jitted device code meet.

Each step reads like the paper's Figure 3:
  examples -> sample N rollouts -> score -> revise the top failed ones -> score the revisions
  -> assemble groups -> old / reference log-probs -> PPO update(s) -> log -> checkpoint
Runs resume from the newest readable checkpoint in WORKDIR/checkpoints; SIGTERM or Ctrl-C finishes the
current step, saves, and exits cleanly.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from herl_jax import parallel
from herl_jax.config import ConfigError, validate
from herl_jax.data import load_dataset
from herl_jax.herl import collate
from herl_jax.models import export_hf, load_policy
from herl_jax.rubrics import RubricScorer, ScorerConfig
from herl_jax.training.checkpoints import Checkpointer
from herl_jax.training.experience import Experience, collect_experience, validate_policy
from herl_jax.training.metrics_writer import MetricsWriter
from herl_jax.training.optim import make_optimizer
from herl_jax.training.train_step import Learner, StepConfig
from herl_jax.training.update import update_policy

log = logging.getLogger(__name__)

_SECRET_SUFFIXES = ("api_key", "apikey", "secret", "password", "token")


class Trainer:
    """Builds every part from the config, then `run()` trains to `config.trainer.steps`."""

    def __init__(self, config, workdir: str | Path):
        validate(config)  # before anything is loaded: a typo fails in a second
        if config.trainer.prompts_per_step % jax.process_count():
            raise ConfigError(f"config.trainer.prompts_per_step={config.trainer.prompts_per_step}: must be a "
                              f"multiple of the number of processes ({jax.process_count()}), each taking an "
                              "equal share")
        self.cfg = config
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.is_main = jax.process_index() == 0
        if self.is_main:
            self._save_run_info()

        # Every array lives on one mesh over all processes' devices, laid out by parallel.DEFAULT_RULES; the
        # sampler and the learner run where the parameters are.
        self.mesh = parallel.make_mesh(parallel.MeshConfig.from_config(config.parallel))
        log.info("mesh %s over %d devices in %d processes", dict(self.mesh.shape), self.mesh.size,
                 jax.process_count())
        m = config.model
        self.model, self.tokenizer = load_policy(m.source, dtype=m.dtype, param_dtype="float32",
                                                 attention_impl=m.attention_impl, remat=m.remat, mesh=self.mesh)
        self.pad_id = next(t for t in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if t is not None)
        self.dataset = load_dataset(config.data)
        for stats in self.dataset.stats:
            log.info("data: %s", stats)
        # Each process takes its own slice of every global batch and does the host work for it (scoring,
        # revisions, groups); collect_experience then gathers the whole step on every process.
        self.batches = self.dataset.train_batches(config.trainer.prompts_per_step, jax.process_count(),
                                                  jax.process_index())
        self.scorer = RubricScorer(ScorerConfig.from_config(config.rubrics))
        self.learner = Learner(self.model, make_optimizer(config.train.optim), StepConfig.from_config(config.train))
        self.state = self.learner.init_state(self.model)
        self.ref_params = None
        if config.train.loss.kl_coef > 0:  # a frozen copy of the initial policy (not donated with the state)
            self.ref_params = jax.tree.map(lambda p: jnp.array(p, copy=True), self.state.params)
        self.checkpointer = Checkpointer(self.workdir / "checkpoints", keep=config.trainer.keep_checkpoints)
        self.step = 0
        self._stop_requested = False
        self._resume()
        # Opened after the resume: steps an earlier attempt logged past the restored checkpoint are redone.
        self.writer = (MetricsWriter(self.workdir, config.trainer.run_name, resume_step=self.step or None)
                       if self.is_main else None)

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> int:
        """Trains until config.trainer.steps or a stop signal; returns the number of steps done."""
        t = self.cfg.trainer
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        bar = tqdm(total=t.steps, initial=self.step, desc="herl", unit="step", disable=not self.is_main)
        try:
            while self.step < t.steps and not self._stop_requested:
                metrics = self.train_step()
                self.step += 1
                if t.validate_every and self.step % t.validate_every == 0:
                    metrics.update(self.validate())
                if self.writer and self.step % t.log_every == 0:
                    self.writer.write(self.step, metrics)
                if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                    self.save()
                bar.update(1)
                bar.set_postfix(reward=f"{metrics.get('reward/mean', float('nan')):.3f}",
                                revised=f"{metrics.get('revision/rate', 0.0):.2f}")
            if self._stop_requested:
                log.warning("stop requested: saving step %d and exiting", self.step)
                self.save()
            elif t.export_final:  # every process gathers the sharded weights; process 0 writes them
                export_hf(self.policy(), self.workdir / "export", self.tokenizer)
                log.info("exported the final policy to %s", self.workdir / "export")
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.close()
        if self.is_main and self.step >= t.steps and not self._stop_requested:
            (self.workdir / "FINISHED").write_text(f"{self.step}\n")  # launch/sweep.py skips finished runs
        return self.step

    def train_step(self) -> dict[str, float]:
        """One RL step on the next batch of prompts; returns its metrics."""
        start = time.perf_counter()
        examples = next(self.batches)
        seed = 2 * (self.cfg.trainer.seed * 1_000_003 + self.step)  # rollouts use seed, revisions seed + 1
        experience = collect_experience(self.sampling_policy(), self.tokenizer, examples, self.scorer, self.cfg,
                                        seed, self.pad_id)
        metrics = experience_metrics(experience, self.cfg.herl.success_threshold)
        update_seconds = 0.0
        if experience.records:
            mini = self.cfg.train.ppo.mini_batch_size
            rows = -(-len(experience.records) // mini) * mini
            batch = collate(experience.records, pad_id=self.pad_id, bucket_size=self.cfg.trainer.sequence_bucket,
                            batch_size=rows)
            update_start = time.perf_counter()
            self.state, update = update_policy(self.state, batch, self.learner, self.cfg.train.ppo, self.ref_params,
                                               bucket_size=self.cfg.trainer.sequence_bucket)
            update_seconds = time.perf_counter() - update_start
            metrics.update({f"train/{k}": v for k, v in update.items()})
            metrics["perf/train_tokens_per_s"] = float(batch["attention_mask"].sum()) / max(update_seconds, 1e-9)
        else:
            log.warning("step %d: no trainable groups (all prompts skipped or dropped); no update", self.step)
        c = experience.counts
        metrics.update({
            "time/sample": c.sample_seconds, "time/score": c.score_seconds, "time/score_wait": c.score_wait_seconds,
            "time/update": update_seconds,
            "time/step": time.perf_counter() - start,
            "perf/sample_tokens_per_s": (c.generated_tokens + c.revision_tokens) / max(c.sample_seconds, 1e-9),
        })
        return metrics

    def validate(self) -> dict[str, float]:
        examples = self.dataset.validation[: self.cfg.trainer.validation_prompts]
        if not examples:
            return {}
        return validate_policy(self.sampling_policy(), self.tokenizer, examples, self.scorer, self.cfg,
                               self.pad_id, self.cfg.herl.success_threshold)

    # ------------------------------------------------------------------------------ model views
    def policy(self):
        """The current policy as a Decoder with float32 parameters."""
        return nnx.merge(self.learner.graphdef, self.state.params)

    def sampling_policy(self):
        """The current policy with its parameters cast once to the compute dtype (cheaper to decode)."""
        dtype = jnp.dtype(self.cfg.model.dtype)
        return nnx.merge(self.learner.graphdef, jax.tree.map(lambda p: p.astype(dtype), self.state.params))

    # ------------------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        metadata = {"step": self.step, "data": self.batches.state_dict(), "seed": self.cfg.trainer.seed}
        self.checkpointer.save(self.step, self.state, metadata)

    def _resume(self) -> None:
        restored = self.checkpointer.restore_latest(self.state)
        if restored is None:
            return
        step, self.state, metadata = restored
        self.batches.restore(metadata["data"])
        self.step = int(metadata["step"])
        log.info("resumed from checkpoint %d in %s", step, self.checkpointer.directory)

    def _request_stop(self, signum, frame) -> None:
        log.warning("received signal %d: stopping after the current step", signum)
        self._stop_requested = True

    def close(self) -> None:
        self.checkpointer.close()
        if self.writer:
            self.writer.close()
        self.scorer.close()

    # ------------------------------------------------------------------------------ run records
    def _save_run_info(self) -> None:
        """The resolved config (secrets redacted) and the code's git revision, beside the run."""
        (self.workdir / "config.json").write_text(json.dumps(redact(self.cfg.to_dict()), indent=2, default=str))
        try:
            revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                      cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            revision = ""
        (self.workdir / "git_revision.txt").write_text((revision or "unknown") + "\n")


def experience_metrics(exp: Experience, success_threshold: float) -> dict[str, float]:
    """The step's reward, revision and bookkeeping metrics."""
    c = exp.counts

    def mean(values) -> float:
        return float(np.mean(values)) if len(values) else float("nan")

    groups = len(exp.group_max)
    return {
        "reward/mean": mean(exp.rewards),
        "reward/max": mean(exp.group_max),  # mean over prompts of the best rollout's reward
        "reward/success_rate": mean([m >= success_threshold for m in exp.group_max]),
        "revision/rate": c.revised_groups / groups if groups else 0.0,
        "revision/gain": mean(exp.revision_gain),
        "revision/bonus": mean(exp.bonus),
        "revision/fallbacks": float(c.fallback_groups),
        "groups/zero_variance": float(c.zero_variance_groups),
        "groups/skipped": float(c.skipped_groups),
        "samples/dropped": float(c.dropped_samples + c.dropped_revisions),
        "samples/long_prompts_skipped": float(c.skipped_long_prompts + c.long_revise_prompts),
        "samples/generated_tokens": float(c.generated_tokens + c.revision_tokens),
    }


def redact(tree):
    """A copy of a nested dict with the values of secret-looking keys replaced (key *names* kept)."""
    if isinstance(tree, dict):
        return {k: ("<redacted>" if _is_secret(k) and v is not None else redact(v)) for k, v in tree.items()}
    return tree


def _is_secret(key: str) -> bool:
    key = key.lower()
    return key.endswith(_SECRET_SUFFIXES) and not key.endswith("_env")
