"""The step's sample sections (``rollout``, ``revision``): how one RL step samples. No JAX: config files load it
through herl_jax.config (herl_jax/training/run_config.py composes the run's sections)."""

from __future__ import annotations

import dataclasses
import math

from herl_jax.sampling import SamplingConfig
from herl_jax.sections import check


@dataclasses.dataclass(frozen=True)
class SampleSection:
    """How the step samples rollouts (``n`` per prompt) or revisions (one each): RL needs temperature > 0.
    The sampler's settings default to the sampler's own (SamplingConfig documents them; decode_slots,
    decode_chunk and cache_block are continuous batching's)."""

    n: int = 1
    max_new_tokens: int = 4096  # the paper's response budget
    temperature: float = SamplingConfig.temperature
    top_p: float = SamplingConfig.top_p
    top_k: int = SamplingConfig.top_k
    max_prompt_len: int = SamplingConfig.max_prompt_len
    prompt_bucket: int = SamplingConfig.prompt_bucket
    prompt_count_base: int = SamplingConfig.prompt_count_base
    decode_slots: int = SamplingConfig.decode_slots
    decode_chunk: int = SamplingConfig.decode_chunk
    cache_block: int = SamplingConfig.cache_block

    def __post_init__(self):
        # The RL rule here; every other field's rule is SamplingConfig's (checked by building one).
        check(self, [(math.isfinite(self.temperature) and self.temperature > 0, "temperature",
                      "must be finite and > 0 (RL needs sampling)")])
        self.sampling(seed=0, stop_token_ids=())

    def sampling(self, seed: int, stop_token_ids: tuple[int, ...], n: int | None = None) -> SamplingConfig:
        """The sampler's settings for one call (``n`` overrides the section's, e.g. 1 for greedy validation)."""
        return SamplingConfig(n=self.n if n is None else n, max_new_tokens=self.max_new_tokens,
                              temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              stop_token_ids=stop_token_ids, seed=seed, max_prompt_len=self.max_prompt_len,
                              prompt_bucket=self.prompt_bucket, prompt_count_base=self.prompt_count_base,
                              decode_slots=self.decode_slots, decode_chunk=self.decode_chunk,
                              cache_block=self.cache_block)
