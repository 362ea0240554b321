"""Scored samples in, training records out, and their collation into fixed-shape numpy arrays: from the sampler
to the loss a completion is a row of the sampler's output, then a `Sample`, then a `TrainingRecord`.

Token convention shared with the loss: position t of the model's hidden states predicts ``targets[t]``
(the token at t + 1), so a response of r tokens after a context of c tokens is scored at positions
c-1 .. c+r-2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from herl_jax.buckets import round_up
from herl_jax.rubrics import RubricResult


def _as_ids(ids) -> tuple[int, ...]:
    return tuple(int(i) for i in ids)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One scored completion, the one record a completion keeps from scoring to its group's training record.

    context_ids: the tokens it was sampled under (the prompt q, or a revise prompt (q, H)). reward: its Eq. 4
    reward; None when the sample is dropped (an item left unscored under ``unscored="drop"``).
    sampler_logprobs: [len(response_ids)] the sampler's log-probs of the response tokens, if kept. prompt: the
    index of its prompt in the sampler call's list (samples are grouped by it, not by position). text: the
    decoded response; result: the rubric scorer's verdicts (None for a sample built with a given reward).
    """

    context_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    reward: float | None
    sampler_logprobs: tuple[float, ...] | None = None
    prompt: int = 0
    text: str = ""
    result: RubricResult | None = None

    def __post_init__(self):
        object.__setattr__(self, "context_ids", _as_ids(self.context_ids))
        object.__setattr__(self, "response_ids", _as_ids(self.response_ids))
        if self.reward is not None:
            object.__setattr__(self, "reward", float(self.reward))
        if self.sampler_logprobs is not None:
            object.__setattr__(self, "sampler_logprobs", tuple(float(x) for x in self.sampler_logprobs))

    @classmethod
    def scored(cls, prompt: int, context_ids, response_ids, sampler_logprobs, text: str,
               result: RubricResult) -> Sample:
        """A completion with the rubric scorer's result; its reward is the result's score."""
        return cls(context_ids, response_ids, result.score, sampler_logprobs, prompt, text, result)

    @property
    def dropped(self) -> bool:
        return self.reward is None


@dataclasses.dataclass(frozen=True)
class TrainingRecord:
    """One member of a training group.

    context_ids: the prompt q, or the revise prompt (q, H) for a revision; never trained on.
    response_ids: the trained tokens. is_revision: trained with the shaped, unclipped objective (Eq. 12)
    instead of the PPO clip. advantage: Eq. 10. sampler_logprobs: as in ``Sample``.
    """

    context_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    advantage: float
    reward: float
    is_revision: bool = False
    sampler_logprobs: tuple[float, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "context_ids", _as_ids(self.context_ids))
        object.__setattr__(self, "response_ids", _as_ids(self.response_ids))
        if not self.context_ids or not self.response_ids:
            raise ValueError("a training record needs at least one context and one response token")
        if self.sampler_logprobs is not None and len(self.sampler_logprobs) != len(self.response_ids):
            raise ValueError("sampler_logprobs must have one entry per response token")

    @property
    def token_ids(self) -> tuple[int, ...]:
        return self.context_ids + self.response_ids


def collate(
    records: Sequence[TrainingRecord],
    *,
    pad_id: int,
    bucket_size: int = 128,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Packs records into numpy arrays of B rows and T columns, T a multiple of ``bucket_size``.

    B = ``batch_size`` (padding rows have all-False masks and advantage 0) or len(records). Each row is
    context + response, right-padded to T = the longest row rounded up to ``bucket_size``.
      input_ids, positions [B, T] int32 (positions count real tokens from 0); attention_mask [B, T] bool;
      targets [B, T] int32, loss_mask [B, T] bool, sampler_logprobs [B, T] float32 and sampler_mask
      [B, T] bool are aligned with positions: hidden state t scores targets[t] (targets hold the response
      tokens at columns c-1 .. c+r-2 and pad_id elsewhere); sampler_mask marks loss tokens whose record
      carries sampler log-probs.
      advantages [B] float32, is_revision [B] bool.
    """
    n = len(records)
    B = n if batch_size is None else batch_size
    if n == 0 or n > B:
        raise ValueError(f"{n} records do not fit a batch of {B}")

    T = round_up(max(len(r.token_ids) for r in records), bucket_size)
    input_ids = np.full((B, T), pad_id, np.int32)
    attention_mask = np.zeros((B, T), bool)
    targets = np.full((B, T), pad_id, np.int32)
    loss_mask = np.zeros((B, T), bool)
    sampler_logprobs = np.zeros((B, T), np.float32)
    sampler_mask = np.zeros((B, T), bool)
    advantages = np.zeros((B,), np.float32)
    is_revision = np.zeros((B,), bool)

    for b, rec in enumerate(records):
        length, first = len(rec.token_ids), len(rec.context_ids) - 1  # first: the first response token's column
        responses = slice(first, first + len(rec.response_ids))
        input_ids[b, :length] = rec.token_ids
        attention_mask[b, :length] = True
        targets[b, responses] = rec.response_ids
        loss_mask[b, responses] = True
        if rec.sampler_logprobs is not None:
            sampler_logprobs[b, responses] = rec.sampler_logprobs
            sampler_mask[b, responses] = True
        advantages[b] = rec.advantage
        is_revision[b] = rec.is_revision

    positions = np.maximum(np.cumsum(attention_mask, axis=1) - 1, 0).astype(np.int32)
    return dict(
        input_ids=input_ids,
        positions=positions,
        attention_mask=attention_mask,
        targets=targets,
        loss_mask=loss_mask,
        sampler_logprobs=sampler_logprobs,
        sampler_mask=sampler_mask,
        advantages=advantages,
        is_revision=is_revision,
    )
