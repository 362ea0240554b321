"""The host phases of one HeRL step (docs/algorithm.md §2), each a small function with frozen dataclasses in and out:

  encode_prompts -> [sample -> score] rollouts -> choose_and_revise -> [sample -> score] revisions
  -> assemble_groups

Sampling and scoring are `sample_and_score.sample_and_score`, the one scoring path (rollouts, revisions and
validation). Dropped samples (a rubric item left unscored under `unscored="drop"`) never enter a group; a group
left with fewer than two members, a prompt or a revise prompt too long for the sampler are skipped. Every such
case is counted in `StepCounts`.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from herl_jax.data import Example
from herl_jax.herl import Group, Sample, TrainingRecord, assemble_group, revise_prompt_ids, select_candidates
from herl_jax.herl.config import HerlConfig
from herl_jax.herl.prompts import template_for
from herl_jax.learner.seeds import StepSeeds
from herl_jax.sampling import encode_chats
from herl_jax.step.sample_and_score import ScoredBatch, ScoringTask


@dataclasses.dataclass(frozen=True)
class Prompts:
    """This process's examples whose chat-encoded prompts fit the sampler, with their token ids."""

    examples: tuple[Example, ...]
    ids: tuple[tuple[int, ...], ...]
    skipped_long: int = 0

    @property
    def tasks(self) -> tuple[ScoringTask, ...]:
        return tuple(ScoringTask(e.prompt, e.rubric) for e in self.examples)


@dataclasses.dataclass(frozen=True)
class GroupDraft:
    """One prompt's scored originals (the ``dropped`` ones left out, sampling order kept) and I_top, as
    positions into ``originals``."""

    example: Example
    originals: tuple[Sample, ...]
    candidates: tuple[int, ...]
    dropped: int = 0


@dataclasses.dataclass(frozen=True)
class RevisionRequest:
    """Revise candidate ``candidate`` of group ``group`` under the revise prompt ``prompt_ids`` (q, H)."""

    group: int
    candidate: int
    prompt_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class RevisionPlan:
    """The groups to assemble and the revisions to sample for them, with what was set aside on the way."""

    groups: tuple[GroupDraft, ...]
    requests: tuple[RevisionRequest, ...]
    dropped_samples: int = 0
    skipped_groups: int = 0  # fewer than two scored members
    long_revise_prompts: int = 0

    @property
    def tasks(self) -> tuple[ScoringTask, ...]:
        """What each requested revision is scored against: its group's ORIGINAL prompt and rubric (Eq. 6)."""
        return tuple(ScoringTask(self.groups[r.group].example.prompt, self.groups[r.group].example.rubric)
                     for r in self.requests)


@dataclasses.dataclass(frozen=True)
class GroupTrace:
    """One assembled group and what made it, for the samples log (step/group_samples.py): its draft (example,
    scored originals, I_top), each revision sampled for it with its request (a dropped one too), in request
    order, and the group itself (records, τ̃*, bonus, fallback copy, replaced slot)."""

    draft: GroupDraft
    revisions: tuple[tuple[RevisionRequest, Sample], ...]
    group: Group


@dataclasses.dataclass(frozen=True)
class StepCounts:
    """What happened to the prompts and samples of one step (summed into the step's metrics)."""

    prompts: int = 0
    skipped_long_prompts: int = 0
    dropped_samples: int = 0
    skipped_groups: int = 0  # fewer than two scored members
    zero_variance_groups: int = 0  # every member has the same reward: no policy gradient
    revised_groups: int = 0
    revisions: int = 0
    dropped_revisions: int = 0
    long_revise_prompts: int = 0
    fallback_groups: int = 0
    generated_tokens: int = 0
    revision_tokens: int = 0
    sample_seconds: float = 0.0
    score_seconds: float = 0.0  # host scoring time (overlaps sampling when the step is chunked)
    score_wait_seconds: float = 0.0  # of which the device sat idle, waiting for scores

    @classmethod
    def merge(cls, parts: Sequence[StepCounts]) -> StepCounts:
        """The counts of several processes' shares of one step: counts add up; times are the slowest's."""
        values = {}
        for field in dataclasses.fields(cls):
            column = [getattr(p, field.name) for p in parts]
            values[field.name] = max(column) if isinstance(column[0], float) else sum(column)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Experience:
    """The step's training records and the numbers its metrics are made of."""

    records: tuple[TrainingRecord, ...]
    counts: StepCounts
    rewards: tuple[float, ...]  # scored original rollouts
    group_max: tuple[float, ...]  # per assembled group, before the bonus
    revision_gain: tuple[float, ...]  # per revised group: r̃* − max r
    revision_best: tuple[float, ...]  # per revised group: r̃*, the reward of the revision that joined it
    bonus: tuple[float, ...]  # per candidate: α (r̃_i − r_i)
    groups: tuple[GroupTrace, ...] = ()  # per assembled group, when the step keeps them (Collector.collect)

    @classmethod
    def merge(cls, parts: Sequence[Experience]) -> Experience:
        """Several processes' experiences of one step as one, in process order."""
        if len(parts) == 1:
            return parts[0]
        joined = {f.name: sum((getattr(p, f.name) for p in parts), ()) for f in dataclasses.fields(cls)
                  if f.name != "counts"}
        return cls(counts=StepCounts.merge([p.counts for p in parts]), **joined)


def encode_prompts(tokenizer, examples: Sequence[Example], max_prompt_len: int) -> Prompts:
    """The examples' chat prompts as token ids; those longer than ``max_prompt_len`` are skipped and counted."""
    ids = encode_chats(tokenizer, [e.messages for e in examples])
    keep = [i for i, p in enumerate(ids) if len(p) <= max_prompt_len]
    return Prompts(tuple(examples[i] for i in keep), tuple(tuple(ids[i]) for i in keep), len(ids) - len(keep))


def choose_and_revise(rollouts: ScoredBatch, prompts: Prompts, n: int, herl: HerlConfig, tokenizer,
                      max_revise_prompt_len: int) -> RevisionPlan:
    """Per prompt: its scored originals, I_top (Eq. 5) and a revise prompt (q, H_i) for each candidate.

    rollouts: ``n`` samples per prompt of ``prompts``, each grouped by its prompt index. Revise prompts longer
    than ``max_revise_prompt_len`` are not sampled (counted); the variant decides whether anything is revised."""
    by_prompt: dict[int, list[Sample]] = {}
    for sample in rollouts.samples:
        by_prompt.setdefault(sample.prompt, []).append(sample)
    groups, requests = [], []
    dropped = skipped = long_prompts = 0
    for p, example in enumerate(prompts.examples):
        sampled = by_prompt.get(p, [])
        originals = tuple(s for s in sampled if not s.dropped)
        dropped += len(sampled) - len(originals)
        if len(originals) < 2:
            skipped += 1
            continue
        candidates = select_candidates([s.reward for s in originals], herl,
                                       [len(s.result.satisfied) for s in originals])
        groups.append(GroupDraft(example, originals, candidates, len(sampled) - len(originals)))
        if not herl.revises:
            continue
        prompt_cfg = _prompt_config(herl.prompt, template_for(herl.prompt, example.template))
        for c in candidates:
            ids = revise_prompt_ids(tokenizer, example.instruction, originals[c].result, originals[c].text, prompt_cfg)
            if len(ids) > max_revise_prompt_len:
                long_prompts += 1
                continue
            requests.append(RevisionRequest(len(groups) - 1, c, tuple(ids)))
    return RevisionPlan(tuple(groups), tuple(requests), dropped, skipped, long_prompts)


def assemble_groups(plan: RevisionPlan, revisions: ScoredBatch, rollouts: ScoredBatch, prompts: Prompts,
                    herl: HerlConfig, seeds: StepSeeds) -> Experience:
    """Each group's members, bonus (Eq. 8) and advantages (Eq. 10), and the step's counts.

    revisions: one sample per request of ``plan``, its prompt index the request's (none when nothing was
    revised)."""
    scored: dict[int, list[tuple[int, Sample]]] = {}
    sampled: dict[int, list[tuple[RevisionRequest, Sample]]] = {}
    for revision in revisions.samples:
        request = plan.requests[revision.prompt]
        sampled.setdefault(request.group, []).append((request, revision))
        if not revision.dropped:
            scored.setdefault(request.group, []).append((request.candidate, revision))
    records: list[TrainingRecord] = []
    traces: list[GroupTrace] = []
    rewards, group_max, gains, revision_best, bonus = [], [], [], [], []
    revised = fallbacks = zero_variance = 0
    for g, draft in enumerate(plan.groups):
        originals = draft.originals
        candidates, samples = [c for c, _ in scored.get(g, [])], [s for _, s in scored.get(g, [])]
        group = assemble_group(originals, candidates, samples, herl, seeds.group_rng(originals[0].context_ids),
                               num_satisfied=[len(s.result.satisfied) for s in draft.originals])
        best = max(s.reward for s in originals)
        rewards += [s.reward for s in originals]
        group_max.append(best)
        if samples:
            revised += 1
            fallbacks += group.used_fallback
            revision_best.append(samples[group.best_revision].reward)
            gains.append(revision_best[-1] - best)
            bonus += group.bonus
        zero_variance += len({round(r.reward, 9) for r in group.records}) == 1
        records += group.records
        traces.append(GroupTrace(draft, tuple(sampled.get(g, ())), group))
    counts = StepCounts(
        prompts=len(prompts.examples) + prompts.skipped_long, skipped_long_prompts=prompts.skipped_long,
        dropped_samples=plan.dropped_samples, skipped_groups=plan.skipped_groups,
        zero_variance_groups=zero_variance, revised_groups=revised, revisions=len(revisions.samples),
        dropped_revisions=sum(s.dropped for s in revisions.samples), long_revise_prompts=plan.long_revise_prompts,
        fallback_groups=fallbacks, generated_tokens=rollouts.generated_tokens,
        revision_tokens=revisions.generated_tokens,
        sample_seconds=rollouts.sample_seconds + revisions.sample_seconds,
        score_seconds=rollouts.score_seconds + revisions.score_seconds,
        score_wait_seconds=rollouts.score_wait_seconds + revisions.score_wait_seconds)
    return Experience(tuple(records), counts, tuple(rewards), tuple(group_max), tuple(gains), tuple(revision_best),
                      tuple(bonus), tuple(traces))



def _prompt_config(prompt_cfg, template: str):
    """The revise-prompt config rendering with ``template``."""
    if prompt_cfg.template == template:
        return prompt_cfg
    cfg = prompt_cfg.copy_and_resolve_references()
    cfg.template = template
    return cfg

