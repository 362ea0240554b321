"""Scored samples in, training records out, and their collation into fixed-shape numpy arrays.

Token convention shared with the loss: position t of the model's hidden states predicts ``targets[t]``
(the token at t + 1), so a response of r tokens after a context of c tokens is scored at positions
c-1 .. c+r-2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


def _as_ids(ids) -> tuple[int, ...]:
    return tuple(int(i) for i in ids)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One scored response: the context it was sampled under, its tokens, its reward.

    sampler_logprobs: [len(response_ids)] the sampler's log-probs of the response tokens, if kept.
    """

    context_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    reward: float
    sampler_logprobs: tuple[float, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "context_ids", _as_ids(self.context_ids))
        object.__setattr__(self, "response_ids", _as_ids(self.response_ids))
        object.__setattr__(self, "reward", float(self.reward))
        if self.sampler_logprobs is not None:
            object.__setattr__(self, "sampler_logprobs", tuple(float(x) for x in self.sampler_logprobs))


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

    @property
    def loss_mask(self) -> np.ndarray:
        """[len(token_ids)] bool: True on response tokens only."""
        return np.arange(len(self.token_ids)) >= len(self.context_ids)


def _round_up(n: int, bucket: int) -> int:
    return max(bucket, -(-n // bucket) * bucket)


def collate(
    records: Sequence[TrainingRecord],
    *,
    pad_id: int,
    bucket_size: int = 128,
    layout: str = "right",
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Packs records into numpy arrays whose lengths are multiples of ``bucket_size``.

    B = ``batch_size`` (padding rows have all-False masks and advantage 0) or len(records).
    layout "right": each row is context + response, right-padded to T = round_up(max length).
      input_ids, positions [B, T] int32; attention_mask [B, T] bool;
      targets [B, T] int32, loss_mask [B, T] bool, sampler_logprobs [B, T] float32 and
      sampler_mask [B, T] bool are aligned with positions: hidden state t scores targets[t]
      (targets hold the response tokens at columns c-1 .. c+r-2 and pad_id elsewhere).
    layout "left_context": contexts left-padded to P, responses right-padded to R (each rounded up),
      T = P + R, so every response starts at column P.
      input_ids, positions, attention_mask [B, T]; targets, loss_mask, sampler_logprobs, sampler_mask
      [B, R] cover the response block and are scored by hidden[:, P-1 : T-1], P = T - R.
    Both: advantages [B] float32, is_revision [B] bool. positions count real tokens from 0.
    sampler_mask marks loss tokens whose record carries sampler log-probs.
    """
    if layout not in ("right", "left_context"):
        raise ValueError(f"unknown layout {layout!r}; expected right or left_context")
    n = len(records)
    B = n if batch_size is None else batch_size
    if n == 0 or n > B:
        raise ValueError(f"{n} records do not fit a batch of {B}")

    ctx_lens = [len(r.context_ids) for r in records]
    resp_lens = [len(r.response_ids) for r in records]
    if layout == "right":
        T = W = _round_up(max(c + r for c, r in zip(ctx_lens, resp_lens)), bucket_size)
    else:
        P = _round_up(max(ctx_lens), bucket_size)
        W = _round_up(max(resp_lens), bucket_size)
        T = P + W

    input_ids = np.full((B, T), pad_id, np.int32)
    attention_mask = np.zeros((B, T), bool)
    targets = np.full((B, W), pad_id, np.int32)
    loss_mask = np.zeros((B, W), bool)
    sampler_logprobs = np.zeros((B, W), np.float32)
    sampler_mask = np.zeros((B, W), bool)
    advantages = np.zeros((B,), np.float32)
    is_revision = np.zeros((B,), bool)

    for b, (rec, c, r) in enumerate(zip(records, ctx_lens, resp_lens)):
        # start: column of the first context token; first: target column of the first response token
        start, first = (0, c - 1) if layout == "right" else (P - c, 0)
        input_ids[b, start : start + c + r] = rec.token_ids
        attention_mask[b, start : start + c + r] = True
        targets[b, first : first + r] = rec.response_ids
        loss_mask[b, first : first + r] = True
        if rec.sampler_logprobs is not None:
            sampler_logprobs[b, first : first + r] = rec.sampler_logprobs
            sampler_mask[b, first : first + r] = True
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
