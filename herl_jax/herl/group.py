"""From a scored group and its scored revisions to training records (Eqs. 7, 8, 10; ALGORITHM.md §7)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from herl_jax.herl.config import variant_from_config
from herl_jax.herl.records import Sample, TrainingRecord


def best_revision(revision_rewards: Sequence[float]) -> int:
    """Eq. 7: position of τ̃* in ``revision_rewards`` [K] (the first one on ties)."""
    return int(np.argmax(np.asarray(revision_rewards, dtype=np.float64)))


def signed_bonus(
    rewards: Sequence[float], candidates: Sequence[int], revision_rewards: Sequence[float], alpha: float
) -> np.ndarray:
    """Eq. 8: r_i + α (r̃_i − r_i) for i in ``candidates``, other rewards unchanged.

    rewards: [N]; candidates: [K] indices into rewards; revision_rewards: [K], aligned with candidates.
    Returns [N] float64. Signed: a worse revision lowers its candidate's reward.
    """
    r = np.asarray(rewards, dtype=np.float64).copy()
    idx = np.asarray(candidates, dtype=np.int64)
    r[idx] += alpha * (np.asarray(revision_rewards, dtype=np.float64) - r[idx])
    return r


def group_advantages(rewards: Sequence[float], eps: float = 1e-6) -> np.ndarray:
    """Eq. 10: (r − mean) / (std + eps) with the unbiased std (ddof=1, as verl). [M] -> [M] float64."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.size < 2:
        raise ValueError("group advantages need at least two members")
    return (r - r.mean()) / (r.std(ddof=1) + eps)


@dataclasses.dataclass(frozen=True)
class Group:
    """One prompt's training group.

    records: the members, originals first in sampling order; in append mode the extra member is last.
    best_revision: position in ``candidates`` of τ̃*, None when nothing was revised.
    used_fallback: τ̃* lost to the best original, whose copy joined instead (require_improvement).
    replaced_slot: the original overwritten in replace mode, else None.
    """

    records: tuple[TrainingRecord, ...]
    best_revision: int | None = None
    used_fallback: bool = False
    replaced_slot: int | None = None


def assemble_group(
    originals: Sequence[Sample],
    candidates: Sequence[int],
    revisions: Sequence[Sample],
    cfg,
    rng: np.random.Generator | None = None,
) -> Group:
    """Builds the training group of one prompt.

    originals: the N rollouts, all under the same context q. candidates: I_top, as from
    ``select_candidates``. revisions: one scored revision per candidate, in the same order, each under
    its revise prompt (q, H_i); its reward is scored against the original rubric. cfg: the ``herl``
    sub-config. rng: a seeded generator, needed only by ``group_mode="replace"`` (the overwritten slot).

    Steps: τ̃* = argmax r̃ (Eq. 7); the signed bonus on the candidates (Eq. 8, α from the variant); the
    extra member is τ̃* (a revision record, under (q, H) or, for NaiveHE, under q with its sampler
    log-probs dropped since they were taken under (q, H)), or, when ``require_improvement`` and
    r̃* < max r, a copy of the best original (highest reward after the bonus, lowest index on ties),
    trained as an ordinary on-policy sample. ``append`` adds it as member N+1; ``replace`` overwrites a
    uniformly random slot. Advantages (Eq. 10) are computed over the final members' rewards.
    """
    if len(candidates) != len(revisions):
        raise ValueError(f"{len(candidates)} candidates but {len(revisions)} revisions")
    if cfg.group_mode not in ("append", "replace"):
        raise ValueError(f"unknown group_mode {cfg.group_mode!r}; expected append or replace")
    if cfg.group_mode == "replace" and rng is None:
        raise ValueError("group_mode='replace' needs a seeded rng")
    variant = variant_from_config(cfg)
    if revisions and not variant.revise:
        raise ValueError(f"variant {variant.name} does not revise, but revisions were given")

    rewards = np.array([s.reward for s in originals], dtype=np.float64)
    members = [(s, False) for s in originals]  # (sample, is_revision)
    star, used_fallback, slot = None, False, None
    if revisions:
        revision_rewards = [s.reward for s in revisions]
        star = best_revision(revision_rewards)
        best_original = rewards.max()
        rewards = signed_bonus(rewards, candidates, revision_rewards, variant.alpha)
        revision = revisions[star]
        if cfg.require_improvement and revision.reward < best_original - cfg.tie_atol:
            copy = int(np.argmax(rewards))
            extra = (dataclasses.replace(originals[copy], reward=rewards[copy]), False)
        elif variant.under_hindsight:
            extra = (revision, True)
        else:
            q = originals[0].context_ids
            extra = (dataclasses.replace(revision, context_ids=q, sampler_logprobs=None), True)
        used_fallback = not extra[1]
        if cfg.group_mode == "append":
            members.append(extra)
            rewards = np.append(rewards, extra[0].reward)
        else:
            slot = int(rng.integers(len(members)))
            members[slot] = extra
            rewards[slot] = extra[0].reward

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
    return Group(records, best_revision=star, used_fallback=used_fallback, replaced_slot=slot)
