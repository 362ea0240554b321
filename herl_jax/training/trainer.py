"""The HeRL training loop — the one place where host code and jitted device code meet.

Each step is `RLStep` (rl_step.py), which reads like the paper's Figure 3:
  examples -> sample N rollouts -> score -> revise the top failed ones -> score the revisions
  -> assemble groups -> old / reference log-probs -> PPO update(s)
or, for the SFT and DPO baselines (train.objective.kind), `OfflineStep` (offline_step.py) on given responses,
with everything else the same: model loading, sharding, validation, checkpoints, resume, signals, metrics.
and the trainer adds what a run needs around it: data, validation, logging, checkpoints and signals.
Runs resume from the newest readable checkpoint in WORKDIR/checkpoints; SIGTERM or Ctrl-C (once or more, to
the process or its whole group) finishes the current step, saves, and exits cleanly. What can be checked
before the weights load is checked first (preflight.py); a run that stops learning stops as failed
(run_health.py), and stays failed (run_outcome.py): a rerun is refused unless `retry_failed`.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from pathlib import Path

import jax
from flax import nnx
from tqdm import tqdm

from herl_jax import parallel
from herl_jax.data import load_dataset
from herl_jax.learner.learner import Learner
from herl_jax.learner.seeds import StepSeeds
from herl_jax.learner.optim import make_optimizer
from herl_jax.models import load_policy
from herl_jax.own_files import refuse_link, write_file
from herl_jax.rubrics import RubricScorer
from herl_jax.sampling import pad_id_for
from herl_jax.step.offline_step import OfflineStep
from herl_jax.step.group_samples import sample_rows
from herl_jax.step.rl_step import Collector, RLStep, StepSettings, frozen_copy
from herl_jax.step.validation_keys import VALIDATION_REWARD
from herl_jax.training.checkpoints import Checkpointer, check_writable
from herl_jax.training.compile_cache import enable_compilation_cache
from herl_jax.training.metrics_writer import METRICS_FILE, SAMPLES_FILE, MetricsWriter
from herl_jax.training.preflight import check_before_loading, check_memory
from herl_jax.training.run_config import ConfigError, resolve
from herl_jax.training.run_health import RunHealth, TrainingHalted
from herl_jax.training.run_outcome import FAILED, FINISHED, Failure, clear_failure, record_failure, refuse_failed
from herl_jax.training.run_policy import validation_rewards, write_export
from herl_jax.training.run_record import record_config, record_data, record_git_revision, redacted
from herl_jax.workdir_lock import WorkdirLock

log = logging.getLogger(__name__)

EXPORT, EXPORT_BEST = "export", "export_best"  # the final policy; the best validation step's (trainer.export_best)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Trainer:
    """Builds every part from the config, then `run()` trains to `config.trainer.steps`.

    `allow_config_change`: resume a checkpointed run whose recorded config differs (run_record.py); the
    config key trainer.allow_config_change allows it too. `retry_failed`: resume a run that stopped as failed
    (run_outcome.py) instead of refusing it."""

    def __init__(self, config, workdir: str | Path, allow_config_change: bool = False, retry_failed: bool = False):
        self.run_config = run = resolve(config)  # before anything is loaded: a typo fails in a second
        if run.trainer.prompts_per_step % jax.process_count():
            raise ConfigError(f"config.trainer.prompts_per_step={run.trainer.prompts_per_step}: must be a "
                              f"multiple of the number of processes ({jax.process_count()}), each taking an "
                              "equal share")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.is_main = jax.process_index() == 0
        self.writer, self._stop_requested = None, False
        # From here on a stop signal only asks the loop to stop after its step (saved, exit 0).
        self._previous_handlers = _catch(STOP_SIGNALS, self._request_stop)
        # One trainer per workdir: a second refuses, naming the holder; a dead holder's lock is taken over.
        self._lock = WorkdirLock(self.workdir).acquire() if self.is_main else None
        try:
            self._record_run(run, allow_config_change or run.trainer.allow_config_change, retry_failed)
            self._build(run)
        except BaseException:
            if hasattr(self, "checkpointer"):
                self.checkpointer.close()
            self._release()
            raise

    def _record_run(self, run, allow_config_change: bool, retry_failed: bool) -> None:
        """A failed run refused unless retried, config.json (checked against a checkpointed run's) and
        git_revision.txt; every process checks."""
        if not retry_failed:
            refuse_failed(self.workdir)
        checkpoints = self.workdir / "checkpoints"
        check_writable(checkpoints)  # a read-only folder: refused now, not after training
        self._resuming = resuming = checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())
        record_config(self.workdir, run.raw.to_dict(), resuming=resuming, allow_change=allow_config_change,
                      write=self.is_main)
        if self.is_main:
            record_git_revision(self.workdir)
            # Written later: a planted link is refused before anything loads.
            for name in (METRICS_FILE, SAMPLES_FILE, FINISHED, FAILED, EXPORT, EXPORT_BEST):
                refuse_link(self.workdir / name)

    def _build(self, run) -> None:
        """Loads the data (the checkpointed run's, when resuming), checks what can be checked before the weights,
        loads the policy, builds the step, and resumes from the newest readable checkpoint."""
        self.dataset = load_dataset(run.data)
        for stats in self.dataset.stats:
            log.info("data: %s", stats)
        record_data(self.workdir, self.dataset, resuming=self._resuming, write=self.is_main)
        check_before_loading(run, self.dataset)
        enable_compilation_cache(run.trainer.compilation_cache_dir)
        # Every array lives on one mesh over all processes' devices, laid out by parallel.DEFAULT_RULES; the
        # sampler and the learner run where the parameters are.
        self.mesh = parallel.make_mesh(run.mesh)
        log.info("mesh %s over %d devices in %d processes", dict(self.mesh.shape), self.mesh.size,
                 jax.process_count())
        check_memory(run, self.mesh.size)
        m = run.model
        self.model, self.tokenizer = load_policy(m.source, dtype=m.dtype, param_dtype="float32",
                                                 attention_impl=m.attention_impl, remat=m.remat, mesh=self.mesh)
        log.info("loaded the policy from %s", m.source)
        # Each process takes its own slice of every global batch and does the host work for it (scoring,
        # revisions, groups); the step then gathers the whole experience on every process.
        self.batches = self.dataset.train_batches(run.trainer.prompts_per_step, jax.process_count(),
                                                  jax.process_index())
        self.scorer = RubricScorer(run.scorer)
        learner = Learner(self.model, make_optimizer(run.optim), run.learner)
        self.state = learner.init_state(self.model)
        objective = run.learner.objective
        # A frozen copy of the initial policy (not donated with the state) for the KL term, or DPO's reference.
        needs_reference = objective.kind == "dpo" or (not objective.offline and run.learner.loss.kl_coef > 0)
        ref_params = frozen_copy(self.state.params) if needs_reference else None
        settings = StepSettings.from_run(run)
        collector = Collector(settings, self.tokenizer, self.scorer, pad_id_for(self.tokenizer))
        self.train_step = (OfflineStep(learner, collector, objective, run.trainer.sequence_bucket, ref_params)
                           if objective.offline else RLStep(settings, learner, collector, ref_params))
        self.health = RunHealth(run.trainer.max_nonfinite_steps, run.trainer.max_empty_steps)
        self.checkpointer = Checkpointer(self.workdir / "checkpoints", keep=run.trainer.keep_checkpoints)
        self.step = 0
        self._resume()
        self._saved_step = self.step
        # Opened after the resume: what an earlier attempt logged past the restored step (past step 0 when
        # it crashed before its first checkpoint) is redone, so its lines are dropped.
        self.writer = (MetricsWriter(self.workdir, run.trainer.run_name, resume_step=self.step,
                                     wandb_project=run.trainer.wandb_project, config=redacted(run.raw.to_dict()))
                       if self.is_main else None)
        # The best validation reward up to the restored step (metrics.jsonl is in the shared workdir).
        self._best_validation = max(validation_rewards(self.workdir, up_to=self.step).values(), default=-math.inf)

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> int:
        """Trains until config.trainer.steps or a stop signal; returns the number of steps done. Raises
        run_health.TrainingHalted (recorded in WORKDIR/FAILED; nothing exported, no FINISHED) when the run
        stopped learning."""
        t = self.run_config.trainer
        if self.is_main:
            clear_failure(self.workdir)  # a retry (a failed run is refused otherwise): failed again only if it fails
        if self.is_main and self.step < t.steps:
            # Left by an earlier, shorter run of this workdir (trainer.steps raised since): no longer finished,
            # so that a stop before the new last step leaves a run that launch/sweep.py and the report resume.
            (self.workdir / FINISHED).unlink(missing_ok=True)
        bar = tqdm(total=t.steps, initial=self.step, desc=self.run_config.learner.objective.kind, unit="step",
                   disable=not self.is_main)
        try:
            while self.step < t.steps and not self._stop_agreed():
                metrics = self._train_one_step()
                bar.update(1)
                bar.set_postfix(reward=f"{metrics.get('reward/mean', float('nan')):.3f}",
                                revised=f"{metrics.get('revision/rate', 0.0):.2f}")
            finished = self.step >= t.steps
            if not finished and self.step == 0:  # stopped while starting: the model source is the state
                log.warning("stop requested before the first step: nothing to save, exiting")
            elif not finished:
                log.warning("stop requested: saving step %d and exiting", self.step)
                self.save()
            else:
                if t.export_final:  # every process gathers the sharded weights; process 0 writes them
                    self._export(EXPORT)
                    log.info("exported the final policy to %s", self.workdir / EXPORT)
        except TrainingHalted as halted:
            if self.is_main:
                record_failure(self.workdir, Failure(halted.step, halted.reason))
            raise
        finally:
            bar.close()
            self.close()
        if self.is_main and finished:
            write_file(self.workdir / FINISHED, f"{self.step}\n")  # launch/sweep.py skips finished runs
        return self.step

    def _train_one_step(self) -> dict[str, float]:
        """One training step, its metrics logged, the run's health checked, and a checkpoint when one is due."""
        t = self.run_config.trainer
        keep_groups = t.logs_samples_at(self.step + 1)  # the same on every process: the groups are gathered
        self.state, metrics, groups = self.train_step(self.state, next(self.batches), self.step, keep_groups)
        metrics.update(self.scorer.take_stats())  # judge failures by kind, zeroed samples, timeouts
        self.step += 1
        if t.validate_every and self.step % t.validate_every == 0:
            metrics.update(self.held_out_metrics())
            # the validation replies' scoring, under its own name, so the next step's counts are its own
            metrics.update({f"validation/{k}": v for k, v in self.scorer.take_stats().items()})
        if self.writer and self.step % t.log_every == 0:
            self.writer.write(self.step, metrics)
        self._keep_if_best(metrics.get(VALIDATION_REWARD))
        if self.writer and groups:  # the step just done, numbered from 0 in its seeds
            rows = sample_rows(groups, self.tokenizer, t.log_samples_groups, StepSeeds(t.seed, self.step - 1))
            self.writer.write_samples(self.step, rows)
        # Raises TrainingHalted before this step is saved: a retry resumes from the step before.
        self.health.observe(self.step, metrics, last=self.step == t.steps)
        if self.step % t.checkpoint_every == 0 or self.step == t.steps:
            self.save()
        return metrics

    def held_out_metrics(self) -> dict[str, float]:
        """The current policy's greedy replies to the first validation prompts, scored."""
        examples = self.dataset.validation[: self.run_config.trainer.validation_prompts]
        if not examples:
            return {}
        return self.train_step.collector.held_out(self.train_step.sampling_policy(self.state.params), examples,
                                                  self.run_config.herl.success_threshold)

    def policy(self):
        """The current policy as a Decoder with float32 parameters."""
        return nnx.merge(self.train_step.learner.graphdef, self.state.params)

    def _keep_if_best(self, validation_reward: float | None) -> None:
        """Under trainer.export_best, exports the policy to WORKDIR/export_best when its validation reward beats
        every earlier one (the same on every process: validation is gathered)."""
        if (not self.run_config.trainer.export_best or validation_reward is None
                or not validation_reward > self._best_validation):  # NaN too
            return
        self._best_validation = validation_reward
        self._export(EXPORT_BEST, {VALIDATION_REWARD: validation_reward})
        log.info("step %d: best validation reward so far (%.4f), exported to %s", self.step, validation_reward,
                 self.workdir / EXPORT_BEST)

    def _export(self, name: str, details: dict | None = None) -> None:
        """The current policy as a HF directory WORKDIR/NAME (run_policy.write_export), on every process."""
        record = {"workdir": str(self.workdir.absolute()), "step": self.step, **(details or {})}
        write_export(self.policy(), self.tokenizer, self.workdir / name, record)

    # ------------------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        """Checkpoints the current step (once: a step already saved is not saved again)."""
        if self.step == self._saved_step and self.step in self.checkpointer.steps():
            return
        metadata = {"step": self.step, "data": self.batches.state_dict(), "seed": self.run_config.trainer.seed,
                    "health": self.health.state_dict()}
        self.checkpointer.save(self.step, self.state, metadata)
        self._saved_step = self.step

    def _resume(self) -> None:
        restored = self.checkpointer.restore_latest(self.state)
        if restored is None:
            return
        step, self.state, metadata = restored
        self.batches.restore(metadata["data"])
        self.health.restore(metadata.get("health", {}))
        self.step = int(metadata["step"])
        log.info("resumed from checkpoint %d in %s", step, self.checkpointer.directory)

    # ------------------------------------------------------------------------------ signals
    def _request_stop(self, signum, frame) -> None:
        if self._stop_requested:
            log.warning("received signal %d again: already stopping after the current step", signum)
            return
        log.warning("received signal %d: stopping after the current step", signum)
        self._stop_requested = True

    def _stop_agreed(self) -> bool:
        """Whether any process was asked to stop: all processes stop after the same step (a collective)."""
        return any(parallel.allgather_objects(self._stop_requested))

    def close(self) -> None:
        """Waits for the last save, closes the logs, the scorer and the lock, and restores the signal
        handlers (still ours while the save finishes: a second signal cannot cut it short)."""
        self.checkpointer.close()
        if self.writer:
            self.writer.close()
        self.scorer.close()
        self._release()

    def _release(self) -> None:
        if self._lock:
            self._lock.release()
            self._lock = None
        _catch(self._previous_handlers.keys(), self._previous_handlers)
        self._previous_handlers = {}


def _catch(signals, handler) -> dict:
    """Installs `handler` (one for all, or a dict signal -> handler) for `signals`; returns the previous
    handlers. Only the main thread may: elsewhere (a Trainer built in a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler[s] if isinstance(handler, dict) else handler) for s in signals}
