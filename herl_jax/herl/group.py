"""From a scored group and its revisions to training records (Eqs. 7, 8, 10; docs/algorithm.md §2, §7, §10)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from herl_jax.herl.config import HerlConfig
from herl_jax.herl.records import Sample, TrainingRecord


def best_revision(revision_rewards: Sequence[float]) -> int:
    """Eq. 7: position of τ̃* in ``revision_rewards`` [K] (the first one on ties)."""
    return int(np.argmax(np.asarray(revision_rewards, dtype=np.float64)))


def signed_bonus(
    rewards: Sequence[float], candidates: Sequence[int], revision_rewards: Sequence[float], alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 8: r_i + α (r̃_i − r_i) for i in ``candidates``, other rewards unchanged.

    rewards: [N]; candidates: [K] indices into rewards; revision_rewards: [K], aligned with candidates.
    Returns the rewards after the bonus [N] and the bonus α (r̃_i − r_i) itself [K], both float64.
    Signed: a worse revision lowers its candidate's reward.
    """
    r = np.asarray(rewards, dtype=np.float64).copy()
    idx = np.asarray(candidates, dtype=np.int64)
    bonus = alpha * (np.asarray(revision_rewards, dtype=np.float64) - r[idx])
    r[idx] += bonus
    return r, bonus


def fallback_original(
    rewards: Sequence[float], num_satisfied: Sequence[int] | None = None, atol: float = 0.0
) -> int:
    """The original a failed revision falls back to (public code): the best by reward.

    rewards: [N] the originals' rewards BEFORE the bonus. Rewards within ``atol`` of the maximum are
    tied; ties go to the most satisfied rubric items (``num_satisfied`` [N], when given), then to the
    lowest index.
    """
    r = np.asarray(rewards, dtype=np.float64)
    tied = [int(i) for i in np.flatnonzero(r >= r.max() - atol)]
    if num_satisfied is None:
        return tied[0]
    return min(tied, key=lambda i: (-num_satisfied[i], i))


def group_advantages(rewards: Sequence[float], eps: float = 1e-6) -> np.ndarray:
    """Eq. 10: (r − mean) / (std + eps) with the unbiased std (ddof=1, as verl). [M] -> [M] float64."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.size < 2:
        raise ValueError("group advantages need at least two members")
    return (r - r.mean()) / (r.std(ddof=1) + eps)


def _extra_member(originals, revision, rewards, bonused, cfg, num_satisfied) -> tuple[Sample, int | None]:
    """(sample, copied original) of the member τ̃* brings: see ``assemble_group``; the copied original's index
    is None when τ̃* itself joins. rewards / bonused: [N] the originals' rewards before / after the bonus."""
    if cfg.require_improvement and revision.reward < rewards.max() - cfg.tie_atol:
        copy = fallback_original(rewards, num_satisfied, cfg.tie_atol)
        return dataclasses.replace(originals[copy], reward=bonused[copy]), copy
    if cfg.under_hindsight:
        return revision, None
    q = originals[0].context_ids
    return dataclasses.replace(revision, context_ids=q, sampler_logprobs=None), None


@dataclasses.dataclass(frozen=True)
class Group:
    """One prompt's training group.

    records: the members, originals first in sampling order; in append mode the extra member is last.
    best_revision: position in ``candidates`` of τ̃*, None when nothing was revised.
    fallback_copy: the original whose copy joined instead of τ̃*, which lost to it (require_improvement),
    else None.
    replaced_slot: the original overwritten in replace mode, else None.
    bonus: per revised candidate, in ``candidates`` order, the Eq. 8 bonus α (r̃_i − r_i) its reward got.
    """

    records: tuple[TrainingRecord, ...]
    best_revision: int | None = None
    fallback_copy: int | None = None
    replaced_slot: int | None = None
    bonus: tuple[float, ...] = ()

    @property
    def used_fallback(self) -> bool:
        """τ̃* lost to the best original, whose copy joined instead."""
        return self.fallback_copy is not None


def _check_group_inputs(originals, candidates, revisions, cfg: HerlConfig, rng, num_satisfied) -> None:
    if len(candidates) != len(revisions):
        raise ValueError(f"{len(candidates)} candidates but {len(revisions)} revisions")
    if num_satisfied is not None and len(num_satisfied) != len(originals):
        raise ValueError(f"{len(originals)} originals but {len(num_satisfied)} satisfied counts")
    if cfg.group_mode == "replace" and rng is None:
        raise ValueError("group_mode='replace' needs a seeded rng")
    if revisions and not cfg.revises:
        raise ValueError(f"variant {cfg.variant} does not revise, but revisions were given")


def assemble_group(
    originals: Sequence[Sample],
    candidates: Sequence[int],
    revisions: Sequence[Sample],
    cfg: HerlConfig,
    rng: np.random.Generator | None = None,
    num_satisfied: Sequence[int] | None = None,
) -> Group:
    """Builds the training group of one prompt.

    originals: the N rollouts, all under the same context q. candidates: I_top, as from
    ``select_candidates``. revisions: one scored revision per candidate, in the same order, each under
    its revise prompt (q, H_i); its reward is scored against the original rubric. cfg: the checked
    ``herl`` sub-config. rng: a seeded generator, needed only by ``group_mode="replace"`` (the slot).
    num_satisfied: [N] satisfied rubric items per original; breaks reward ties of the fallback.

    Steps: τ̃* = argmax r̃ (Eq. 7); the signed bonus on the candidates (Eq. 8, α from the variant); the
    extra member is τ̃* (a revision record, under (q, H) or, for NaiveHE, under q with its sampler
    log-probs dropped since they were taken under (q, H)), or, when ``require_improvement`` and
    r̃* < max r (within ``tie_atol``), a copy of the best original, trained as an ordinary on-policy
    sample: the original is chosen by its reward BEFORE the bonus (``fallback_original``: ties to the
    most satisfied items, then the lowest index), as the public code does, and the copy carries that
    original's reward AFTER the bonus, so it matches its twin in the group. ``append`` adds the extra
    member as member N+1; ``replace`` overwrites a uniformly random slot. Advantages (Eq. 10) are
    computed over the final members' rewards.
    """
    _check_group_inputs(originals, candidates, revisions, cfg, rng, num_satisfied)

    rewards = np.array([s.reward for s in originals], dtype=np.float64)
    members = [(s, False) for s in originals]  # (sample, is_revision)
    star, copy, slot, bonus = None, None, None, ()
    if revisions:
        revision_rewards = [s.reward for s in revisions]
        star = best_revision(revision_rewards)
        bonused, bonus = signed_bonus(rewards, candidates, revision_rewards, cfg.bonus_alpha)
        extra, copy = _extra_member(originals, revisions[star], rewards, bonused, cfg, num_satisfied)
        rewards = bonused
        if cfg.group_mode == "append":
            members.append((extra, copy is None))
            rewards = np.append(rewards, extra.reward)
        else:
            slot = int(rng.integers(len(members)))
            members[slot] = (extra, copy is None)
            rewards[slot] = extra.reward

    advantages = group_advantages(rewards, cfg.adv_eps)
    records = tuple(
        TrainingRecord(
            context_ids=s.context_ids,
            response_ids=s.response_ids,
            advantage=float(a),
            reward=float(r),
            is_revision=is_rev,
            sampler_logprobs=s.sampler_logprobs,
        )
        for (s, is_rev), r, a in zip(members, rewards, advantages)
    )
    return Group(records, best_revision=star, fallback_copy=copy, replaced_slot=slot,
                 bonus=tuple(float(b) for b in bonus))
