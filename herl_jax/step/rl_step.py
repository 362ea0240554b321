"""One RL step as one reusable object: the trainer wraps it with I/O (checkpoints, logging, signals) and
benchmarks/herl_step.py times it as it is.

  Collector:  examples -> encode_prompts -> sample/score rollouts -> choose_and_revise
              -> sample/score revisions -> assemble_groups -> Experience          (host work; any sampler)
  RLStep:     Collector on the current policy, then collate -> PPO update (old / reference log-probs
              stay on the device) -> the step's metrics

Several processes: each passes its own share of the step's examples and does all host work for them; sampling
is one SPMD call per piece; the finished experiences are gathered, so every process updates on the same, whole
step. Every group is thus decided once, by the process that owns its prompt.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from herl_jax import parallel
from herl_jax.buckets import round_up
from herl_jax.data import Example
from herl_jax.herl import collate
from herl_jax.herl.config import HerlConfig
from herl_jax.learner.config import PPOConfig
from herl_jax.learner.learner import Learner, TrainState
from herl_jax.learner.seeds import StepSeeds
from herl_jax.learner.update import update_policy
from herl_jax.rubrics import Scorer
from herl_jax.sampling import Sampler, generate, stop_ids_for
from herl_jax.step import phases
from herl_jax.step.config import SampleSection
from herl_jax.step.held_out import score_held_out
from herl_jax.step.phases import Experience
from herl_jax.step.sample_and_score import ScoredBatch, sample_and_score
from herl_jax.step.validation_keys import VALIDATION_DROPPED, VALIDATION_REWARD, VALIDATION_SUCCESS

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """What one RL step needs of the run config."""

    rollout: SampleSection
    revision: SampleSection
    herl: HerlConfig
    ppo: PPOConfig
    sequence_bucket: int
    score_overlap_chunks: int
    run_seed: int

    @classmethod
    def from_run(cls, run) -> StepSettings:
        """From the run's config (herl_jax.training.run_config.RunConfig, a floor above this one)."""
        t = run.trainer
        return cls(run.rollout, run.revision, run.herl, run.ppo, t.sequence_bucket, t.score_overlap_chunks, t.seed)


class Collector:
    """The host phases of a step around a ``sampler`` (ours, or the PyTorch baseline's) and a ``scorer``."""

    def __init__(self, settings: StepSettings, tokenizer, scorer: Scorer, pad_id: int, sampler: Sampler = generate):
        self.settings, self.tokenizer, self.scorer, self.pad_id = settings, tokenizer, scorer, pad_id
        self.sampler = sampler

    def collect(self, policy, examples: Sequence[Example], step: int, keep_groups: bool = False) -> Experience:
        """This process's share of step ``step``'s examples -> the whole step's experience (on every process).
        ``keep_groups``: keep every group's trace (texts, verdicts, revise prompts: Experience.groups) for the
        samples log; they travel between processes only then. Every process must pass the same value."""
        s, seeds = self.settings, StepSeeds(self.settings.run_seed, step)
        stop = stop_ids_for(self.tokenizer, policy)
        prompts = phases.encode_prompts(self.tokenizer, examples, s.rollout.max_prompt_len)
        # No early return for an empty share: every process must take part in every sampler call.
        rollouts = self._sample_and_score(policy, prompts.ids, prompts.tasks, s.rollout.sampling(seeds.rollouts, stop))
        plan = phases.choose_and_revise(rollouts, prompts, s.rollout.n, s.herl, self.tokenizer,
                                        s.revision.max_prompt_len)
        revisions = ScoredBatch(())
        if s.herl.revises:
            revisions = self._sample_and_score(policy, [r.prompt_ids for r in plan.requests], plan.tasks,
                                               s.revision.sampling(seeds.revisions, stop, n=1))
        mine = phases.assemble_groups(plan, revisions, rollouts, prompts, s.herl, seeds)
        if not keep_groups:
            mine = dataclasses.replace(mine, groups=())
        return Experience.merge(parallel.allgather_objects(mine))

    def held_out(self, policy, examples: Sequence[Example], success_threshold: float) -> dict[str, float]:
        """``validation/*``: the mean reward and success rate of the scored greedy replies to held-out
        ``examples`` (``held_out.score_held_out``; every process passes the same examples), and the dropped."""
        held = score_held_out(self.sampler, policy, self.tokenizer, self.scorer, examples, self.settings.rollout,
                              self.pad_id)
        if not held.replies:
            return {}
        if not held.rewards:
            return {VALIDATION_DROPPED: float(held.dropped)}
        return {
            VALIDATION_REWARD: float(np.mean(held.rewards)),
            VALIDATION_SUCCESS: float(np.mean(held.successes(success_threshold))),
            VALIDATION_DROPPED: float(held.dropped),
        }

    def _sample_and_score(self, policy, prompt_ids, tasks, sampling) -> ScoredBatch:
        return sample_and_score(self.sampler, self.scorer, policy, self.tokenizer, prompt_ids, tasks, sampling,
                                self.pad_id, self.settings.score_overlap_chunks)


class RLStep:
    """sample -> score -> choose and revise -> score revisions -> assemble groups -> update, on a ``Learner``'s
    state. ``ref_params``: the frozen reference policy of the KL term (None without one)."""

    def __init__(self, settings: StepSettings, learner: Learner, collector: Collector, ref_params=None):
        self.settings, self.learner, self.collector, self.ref_params = settings, learner, collector, ref_params

    def sampling_policy(self, params: nnx.State):
        return sampling_policy(self.learner, params)

    def __call__(self, state: TrainState, examples: Sequence[Example], step: int,
                 keep_groups: bool = False) -> tuple[TrainState, dict, tuple[phases.GroupTrace, ...]]:
        """RL step ``step`` on this process's ``examples``; returns the new state, the step's metrics and, with
        ``keep_groups`` (the same on every process), every group's trace for the samples log (else none)."""
        start = time.perf_counter()
        experience = self.collector.collect(self.sampling_policy(state.params), examples, step, keep_groups)
        batch, update, update_seconds = None, {}, 0.0
        if experience.records:
            batch = collate_step(experience, self.collector.pad_id, self.settings)
            update_start = time.perf_counter()
            state, update = update_policy(state, batch, self.learner, self.settings.ppo, self.ref_params,
                                          bucket_size=self.settings.sequence_bucket)
            update_seconds = time.perf_counter() - update_start
        else:
            # Numbered from 1, as metrics.jsonl numbers the step this one completes.
            log.warning("step %d: no trainable groups (all prompts skipped or dropped); no update", step + 1)
        metrics = step_metrics(experience, self.settings.herl.success_threshold, batch, update, update_seconds)
        metrics["time/step"] = time.perf_counter() - start
        return state, metrics, experience.groups


def collate_step(experience: Experience, pad_id: int, settings: StepSettings) -> dict[str, np.ndarray]:
    """The step's records as one batch, rows padded up to whole PPO mini-batches."""
    rows = round_up(len(experience.records), settings.ppo.mini_batch_size)
    return collate(experience.records, pad_id=pad_id, bucket_size=settings.sequence_bucket, batch_size=rows)


def step_metrics(exp: Experience, success_threshold: float, batch: dict[str, np.ndarray] | None,
                 update: dict[str, float], update_seconds: float) -> dict[str, float]:
    """The step's reward, revision, bookkeeping and timing metrics, and the update's under train/ (the
    caller adds time/step). ``batch``: the collated records, None when nothing was trainable."""
    c = exp.counts

    def mean(values) -> float:
        return float(np.mean(values)) if len(values) else float("nan")

    groups = len(exp.group_max)
    train_tokens = int(batch["attention_mask"].sum()) if batch is not None else 0
    metrics = {
        "reward/mean": mean(exp.rewards),
        "reward/max": mean(exp.group_max),  # mean over prompts of the best rollout's reward
        "reward/success_rate": mean([m >= success_threshold for m in exp.group_max]),
        "revision/rate": c.revised_groups / groups if groups else 0.0,
        "revision/gain": mean(exp.revision_gain),
        # Of the revised groups: the share whose revision met the whole rubric (reward >= the success
        # threshold), and the share whose revision beat the group's best rollout (gain > 0).
        "revision/success_rate": mean([r >= success_threshold for r in exp.revision_best]),
        "revision/improved": mean([g > 0 for g in exp.revision_gain]),
        "revision/bonus": mean(exp.bonus),
        "revision/fallbacks": float(c.fallback_groups),
        "groups/zero_variance": float(c.zero_variance_groups),
        "groups/skipped": float(c.skipped_groups),
        "samples/dropped": float(c.dropped_samples + c.dropped_revisions),
        "samples/long_prompts_skipped": float(c.skipped_long_prompts + c.long_revise_prompts),
        "samples/generated_tokens": float(c.generated_tokens + c.revision_tokens),
        "samples/train_rows": float(len(exp.records)),
        "samples/train_tokens": float(train_tokens),
        "time/sample": c.sample_seconds, "time/score": c.score_seconds, "time/score_wait": c.score_wait_seconds,
        "time/update": update_seconds,
        "perf/sample_tokens_per_s": (c.generated_tokens + c.revision_tokens) / max(c.sample_seconds, 1e-9),
    }
    if batch is not None:
        metrics["perf/train_tokens_per_s"] = train_tokens / max(update_seconds, 1e-9)
    metrics.update({f"train/{k}": v for k, v in update.items()})
    return metrics


def sampling_policy(learner: Learner, params: nnx.State):
    """The learner's policy with ``params`` cast once to its compute dtype (cheaper to decode)."""
    return nnx.merge(learner.graphdef, jax.tree.map(lambda p: p.astype(learner.compute_dtype), params))


def frozen_copy(params: nnx.State) -> nnx.State:
    """A copy of ``params`` that shares no buffer with them (the reference policy: not donated with the state)."""
    return jax.tree.map(lambda p: jnp.array(p, copy=True), params)
