"""The samples log's rows: a few of a step's groups as text (WORKDIR/samples.jsonl, one JSON object per group;
training/metrics_writer.py writes them, herl_jax.samples renders them).

The groups are drawn by ``StepSeeds.samples_rng``: revised groups first, in a seeded order, then the others, and
shown in the step's order. A row:

  step                        the step, numbered from 1 as in metrics.jsonl
  prompt_id, prompt           the example's id and its last user message (q)
  rubric                      [{id, text, weight}]; ids number the items from 1, as the revise prompt does
  rollouts                    [{text, reward, met, unmet, unscored}]: the scored rollouts in sampling order (the
                              dropped ones are left out, counted in dropped_rollouts); met / unmet / unscored: item
                              ids (met: a positive item met or a pitfall avoided, as RubricResult.satisfied)
  candidates                  I_top: positions in rollouts chosen for revision
  revisions                   [{candidate, revise_prompt, text, reward, met, unmet, unscored, bonus, best}], one per
                              revise prompt sampled: revise_prompt is the token ids sent, decoded with their special
                              tokens; reward None: dropped (no bonus then); bonus: α (r̃ − r) on its candidate's
                              reward (Eq. 8); best: τ̃* (Eq. 7)
  joined                      "revision" (τ̃* joined the group), "copy" (require_improvement: τ̃* lost to the best
                              original, rollout copy_of, whose copy joined instead) or None (nothing revised)
  copy_of, replaced_slot      the copied rollout; the member replace mode overwrote (else None)
  members                     [{source, index, reward_before_bonus, reward, advantage}]: the training group in
                              order; source rollout / revision / copy, index into rollouts or revisions; reward
                              after the bonus; advantage (Eq. 10)
"""

from __future__ import annotations

from typing import Any, Sequence

from herl_jax.herl import Sample
from herl_jax.learner.seeds import StepSeeds
from herl_jax.step.phases import GroupTrace


def choose_groups(groups: Sequence[GroupTrace], count: int, seeds: StepSeeds) -> list[int]:
    """Positions of at most ``count`` of ``groups``: the revised ones first, each kind in a seeded order; sorted."""
    rng = seeds.samples_rng()
    revised = [g for g, trace in enumerate(groups) if trace.revisions]
    others = [g for g, trace in enumerate(groups) if not trace.revisions]
    order = [revised[i] for i in rng.permutation(len(revised))] + [others[i] for i in rng.permutation(len(others))]
    return sorted(order[:count])


def sample_rows(groups: Sequence[GroupTrace], tokenizer, count: int, seeds: StepSeeds) -> list[dict[str, Any]]:
    """The rows of step ``seeds.step`` (numbered from 0) for the groups ``choose_groups`` picks."""
    return [group_row(groups[g], tokenizer, seeds.step + 1) for g in choose_groups(groups, count, seeds)]


def group_row(trace: GroupTrace, tokenizer, step: int) -> dict[str, Any]:
    """One group as a row (see the module docstring); ``step`` numbered from 1."""
    draft, group = trace.draft, trace.group
    # Group.bonus and Group.best_revision count the revisions that were scored (not dropped), in request order.
    scored = [k for k, (_, revision) in enumerate(trace.revisions) if not revision.dropped]
    bonus = dict(zip(scored, group.bonus))
    best = scored[group.best_revision] if group.best_revision is not None else None
    revisions = [{"candidate": request.candidate,
                  "revise_prompt": tokenizer.decode(request.prompt_ids, skip_special_tokens=False),
                  **_scored(revision), "bonus": bonus.get(k), "best": k == best}
                 for k, (request, revision) in enumerate(trace.revisions)]
    joined = None if best is None else "revision" if group.fallback_copy is None else "copy"
    return {
        "step": step, "prompt_id": draft.example.id, "prompt": draft.example.prompt,
        "rubric": [{"id": j, "text": item.text, "weight": item.weight}
                   for j, item in enumerate(draft.example.rubric.items, start=1)],
        "rollouts": [_scored(s) for s in draft.originals],
        "dropped_rollouts": draft.dropped,
        "candidates": list(draft.candidates),
        "revisions": revisions,
        "joined": joined, "copy_of": group.fallback_copy, "replaced_slot": group.replaced_slot,
        "members": _members(trace, best),
    }


def _scored(sample: Sample) -> dict[str, Any]:
    result = sample.result
    return {"text": sample.text, "reward": sample.reward, "met": [j for j, _ in result.satisfied],
            "unmet": [j for j, _ in result.unmet], "unscored": [j for j, _ in result.unscored]}


def _members(trace: GroupTrace, best: int | None) -> list[dict[str, Any]]:
    """Each training-group member: where it came from, its reward before and after the bonus, its advantage."""
    originals, group = trace.draft.originals, trace.group
    sources = [("rollout", i, originals[i].reward) for i in range(len(originals))]
    if best is not None:
        if group.fallback_copy is None:
            extra = ("revision", best, trace.revisions[best][1].reward)
        else:
            extra = ("copy", group.fallback_copy, originals[group.fallback_copy].reward)
        if group.replaced_slot is None:
            sources.append(extra)
        else:
            sources[group.replaced_slot] = extra
    return [{"source": source, "index": index, "reward_before_bonus": before, "reward": record.reward,
             "advantage": record.advantage}
            for (source, index, before), record in zip(sources, group.records, strict=True)]
