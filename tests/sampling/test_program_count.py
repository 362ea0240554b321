"""The number of sampler programs a config can compile (herl_jax.compiled.program_counts) against the
programs real sampler calls compile: every prompt count and prompt-length bucket of a small config, rows
running to max_new_tokens so every attention window on their way is reached."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from herl_jax.compiled import program_counts
from herl_jax.config import base_config
from herl_jax.models import Decoder, ModelConfig
from herl_jax.sampling import SamplingConfig, generate
from herl_jax.sampling import slots as slot_programs


def small_config(prompt_count_base):
    config = base_config()
    config.herl.variant = "rlvr"  # one call kind: the rollouts
    config.rollout.update(n=2, max_new_tokens=12, max_prompt_len=40, prompt_bucket=8, decode_slots=4,
                          decode_chunk=3, cache_block=4, prompt_count_base=prompt_count_base)
    config.trainer.update(prompts_per_step=4, score_overlap_chunks=1, validate_every=0)
    return config


@pytest.mark.parametrize("prompt_count_base, prompt_counts", [(4, 2), (2, 3)])  # 1, 4 / 1, 2, 4
def test_sampler_calls_compile_at_most_the_counted_programs(prompt_count_base, prompt_counts):
    config = small_config(prompt_count_base)
    counted = program_counts(config, batch_shards=1)
    r = config.rollout
    sampling = SamplingConfig(n=r.n, max_new_tokens=r.max_new_tokens, max_prompt_len=r.max_prompt_len,
                              prompt_bucket=r.prompt_bucket, prompt_count_base=r.prompt_count_base,
                              decode_slots=r.decode_slots, decode_chunk=r.decode_chunk,
                              cache_block=r.cache_block)  # no stop: rows run to M
    # A model no other test (or case) builds: programs compiled earlier in this process cannot be reused here.
    cfg = ModelConfig(family="llama", vocab_size=89 + prompt_count_base, hidden_size=24, intermediate_size=40,
                      num_layers=2, num_heads=3, num_kv_heads=1, head_dim=8)
    model = Decoder(cfg, nnx.Rngs(5))
    prefills, chunks = slot_programs.prefill._cache_size(), slot_programs.decode_chunk._cache_size()
    rng = np.random.default_rng(0)
    for count in range(1, config.trainer.prompts_per_step + 1):
        for longest in (1, 8, 9, 16, 17, 24, 25, 32, 33, 40):  # every length bucket: 8, 16, 24, 32, 40 (the cap)
            prompts = [rng.integers(1, 89, size=rng.integers(1, longest + 1)).tolist() for _ in range(count - 1)]
            generate(model, prompts + [[7] * longest], sampling)
    compiled_prefills = slot_programs.prefill._cache_size() - prefills
    compiled_chunks = slot_programs.decode_chunk._cache_size() - chunks
    assert compiled_prefills == counted["prefill"] == prompt_counts * 5  # x lengths 8, 16, 24, 32, 40
    assert 0 < compiled_chunks <= counted["decode_chunk"]
