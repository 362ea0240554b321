"""Sampling settings, validated once on the host (every field is static for the jitted decode loop)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from herl_jax.sections import check


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How to sample completions.

    n: samples per prompt (the prompt is prefilled once and its KV cache shared by its n samples).
    temperature: 0 means greedy. top_k: 0 = off. top_p: 1.0 = off.
    stop_token_ids: a row finishes at the first of these (the stop token is part of its completion).
    max_prompt_len: longest prompt accepted. prompt_bucket: prompt lengths are padded up to this times 1,
    2, 3, 4, 6, 8, ... (at most max_prompt_len's bucket), so similar calls reuse one compiled program
    (herl_jax.buckets). prompt_count_base: the number of prompts is padded up to a power of this per batch
    shard; filler prompts are prefilled, never decoded, so 4 compiles fewer prefill programs and 2 wastes
    at most half as much prefill (worth it where prefill is a large share of a call, as on a CPU).
    decode_slots: rows decoded at once per batch shard (fewer, in quarters, for a smaller call); a slot
    whose row stops takes the next queued row (continuous batching, the default for every caller: the
    trainer's rollout and revision sections and evaluation take this default, chat one slot per reply). 0 =
    one static batch of all rows, decoded until the longest stops.
    decode_chunk: decode steps per jitted chunk between refills of idle slots (with decode_slots > 0).
    cache_block: granularity of the cache window a chunk attends over (with decode_slots > 0): 1, 2, 3, 4,
    6, 8, 12, ... blocks covering the prompt and the completions so far, so a step reads little more than
    the keys rows have.
    """

    n: int = 1
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    stop_token_ids: tuple[int, ...] = ()
    seed: int = 0
    max_prompt_len: int = 2048
    prompt_bucket: int = 64
    prompt_count_base: int = 4
    decode_slots: int = 64
    decode_chunk: int = 16
    cache_block: int = 64

    def __post_init__(self):
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        check(self, [
            (self.n >= 1, "n", "must be >= 1"),
            (self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1"),
            (self.temperature >= 0, "temperature", "must be >= 0 (0 = greedy)"),
            (self.top_k >= 0, "top_k", "must be >= 0 (0 = off)"),
            (0 < self.top_p <= 1, "top_p", "must be in (0, 1]"),
            (self.max_prompt_len >= 1, "max_prompt_len", "must be >= 1"),
            (self.prompt_bucket >= 1, "prompt_bucket", "must be >= 1"),
            (self.prompt_count_base >= 2, "prompt_count_base", "must be >= 2"),
            (self.decode_slots >= 0, "decode_slots", "must be >= 0 (0 = one static batch)"),
            (self.decode_chunk >= 1, "decode_chunk", "must be >= 1"),
            (self.cache_block >= 1, "cache_block", "must be >= 1"),
        ])

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes: Any) -> "SamplingConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "SamplingConfig":
        """From an ml_collections ConfigDict (or dict); unknown keys are an error that names them."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = dict(cfg)
        unknown = sorted(set(values) - fields)
        if unknown:
            raise KeyError(f"unknown sampling config keys {unknown}; known: {sorted(fields)}")
        if "stop_token_ids" in values:
            values["stop_token_ids"] = tuple(values["stop_token_ids"])
        return cls(**values)
