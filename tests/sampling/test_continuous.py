"""Continuous batching and windowed attention against the static batch and a teacher-forced forward pass;
compile counts, and the decode chunk's donated slots aliased to its outputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from herl_jax import parallel
from herl_jax.models import Decoder, KVCache, ModelConfig
from herl_jax.sampling import SamplingConfig, generate
from herl_jax.sampling import slots as slot_programs
from herl_jax.sampling.sampler import sample
from tests.models.hf_reference import left_padded_batch

STOP = 3
FAMILIES = {"llama": {}, "qwen2": dict(qkv_bias=True), "qwen3": dict(qk_norm=True)}


def tiny_model(family: str, seed: int) -> Decoder:
    cfg = ModelConfig(family=family, vocab_size=97, hidden_size=32, intermediate_size=48, num_layers=3,
                      num_heads=4, num_kv_heads=2, head_dim=8, **FAMILIES[family])
    return Decoder(cfg, nnx.Rngs(seed))


def random_prompts(seed: int, count: int = 5) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 97, rng.integers(2, 30)).tolist() for _ in range(count)]


def assert_greedy(model: Decoder, prompts, out, stop: int) -> None:
    """Every completion token is the argmax of a teacher-forced forward pass over prompt + completion,
    and a row ends exactly at its first stop token (or at max_new_tokens)."""
    rows = [prompts[out.prompt_index[r]] + out.completion(r) for r in range(len(out.lengths))]
    ids, mask = left_padded_batch(rows)
    logits = np.asarray(model(jnp.asarray(ids), jnp.asarray(mask)))
    width = ids.shape[1]
    for r, row in enumerate(rows):
        n_new = out.lengths[r]
        positions = np.arange(width - n_new - 1, width - 1)
        np.testing.assert_array_equal(logits[r, positions].argmax(-1), ids[r, positions + 1])
        completion = out.completion(r)
        assert (stop not in completion[:-1]) and (completion[-1] == stop or n_new == out.tokens.shape[1])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_greedy_rows_equal_the_static_batch_for_any_slot_count(family):
    model, prompts = tiny_model(family, 1), random_prompts(2)
    config = SamplingConfig(n=3, max_new_tokens=40, temperature=0, stop_token_ids=(STOP,), prompt_bucket=16,
                            decode_slots=0)
    static = generate(model, prompts, config)
    assert_greedy(model, prompts, static, STOP)
    for slots, chunk, block in [(1, 7, 8), (4, 3, 16), (9, 16, 4)]:
        out, stats = sample(model, prompts, config.replace(decode_slots=slots, decode_chunk=chunk, cache_block=block))
        np.testing.assert_array_equal(out.tokens, static.tokens)
        np.testing.assert_array_equal(out.lengths, static.lengths)
        assert out.finish_reasons == static.finish_reasons
        np.testing.assert_allclose(out.logprobs, static.logprobs, atol=1e-5)
        assert stats.slots == slots and stats.decoded == static.lengths.sum() - len(static.lengths)


def test_sampled_rows_do_not_depend_on_the_slot_count():
    """Each draw's key is fixed by (seed, row, token index), so rows match the static batch's."""
    model, prompts = tiny_model("llama", 4), random_prompts(5, count=3)
    config = SamplingConfig(n=4, max_new_tokens=24, stop_token_ids=(STOP,), prompt_bucket=8, seed=9, decode_slots=0)
    static = generate(model, prompts, config)
    assert len({tuple(t) for t in static.tokens}) == len(static.tokens)  # rows really differ
    out = generate(model, prompts, config.replace(decode_slots=5, decode_chunk=4, cache_block=8))
    np.testing.assert_array_equal(out.tokens, static.tokens)
    np.testing.assert_allclose(out.logprobs, static.logprobs, atol=1e-5)


def test_idle_slots_take_queued_rows():
    """With fewer slots than rows and long-tailed lengths, slots stay busy (occupancy well above what one
    static batch of the same rows reaches)."""
    model, prompts = tiny_model("qwen3", 7), random_prompts(8, count=8)
    config = SamplingConfig(n=4, max_new_tokens=48, temperature=0, stop_token_ids=(STOP, 5, 7, 11),
                            prompt_bucket=16, decode_slots=0)
    static_out, static_stats = sample(model, prompts, config)
    out, stats = sample(model, prompts, config.replace(decode_slots=4, decode_chunk=2, cache_block=8))
    np.testing.assert_array_equal(out.tokens, static_out.tokens)
    assert len(set(out.lengths.tolist())) > 3  # lengths vary
    decoded = out.lengths.sum() - len(out.lengths)
    assert stats.steps * 4 >= decoded and stats.occupancy > static_stats.occupancy
    assert stats.chunks > 1


def test_progress_counts_the_rows_that_have_ended():
    """One slot and chunks longer than any reply: each chunk runs one row to its end, so the rows finished
    after chunk k are k; with four slots the count only grows and ends at every row."""
    model, prompts = tiny_model("llama", 3), random_prompts(4, count=3)
    config = SamplingConfig(n=2, max_new_tokens=24, temperature=0, stop_token_ids=(STOP, 5, 7), prompt_bucket=16,
                            decode_slots=1, decode_chunk=64)
    reported = []
    out, stats = sample(model, prompts, config, progress=reported.append)
    assert reported == list(range(1, len(out.lengths) + 1)) and stats.chunks == len(reported)
    reported.clear()
    sample(model, prompts, config.replace(decode_slots=4, decode_chunk=3), progress=reported.append)
    assert reported == sorted(reported) and reported[-1] == len(out.lengths) and len(reported) > 1


def test_windowed_decode_step_equals_the_full_cache():
    """A decode step attending over the first W slots computes what it computes over all of them (the
    XLA attention over the whole cache is the reference)."""
    model = tiny_model("qwen2", 3)
    ids, mask = left_padded_batch(random_prompts(4, count=3))
    cache = KVCache.empty(model.cfg, batch=3, max_len=ids.shape[1] + 40)
    _, cache = model(jnp.asarray(ids), jnp.asarray(mask), cache=cache)
    token = jnp.asarray([[5], [6], [7]], jnp.int32)
    full, full_cache = model(token, jnp.ones_like(token), cache=cache)
    window, window_cache = model(token, jnp.ones_like(token), cache=cache, window=ids.shape[1] + 8)
    np.testing.assert_allclose(np.asarray(window), np.asarray(full), atol=1e-6)
    for a, b in zip(window_cache.k, full_cache.k):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_no_recompilation_after_warm_up():
    model = tiny_model("llama", 2)
    config = SamplingConfig(n=2, max_new_tokens=40, prompt_bucket=16, decode_slots=3, decode_chunk=4,
                            cache_block=8)  # no stop tokens: every call reaches every window
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: compiles.append(event) if "backend_compile" in event else None)
    generate(model, [[1, 2, 3], [4, 5, 6, 7, 8]], config)
    windows = slot_programs.decode_chunk._cache_size()
    first = len(compiles)
    generate(model, [[9] * 11, [3, 1]], config.replace(seed=4))  # other prompts, same buckets
    assert len(compiles) == first
    assert windows >= 3  # the attention window grew in power-of-two blocks as the rows did


def test_decode_chunk_returns_the_donated_slots_in_place():
    """The slots (KV cache and completions) are donated and aliased to the outputs: not doubled."""
    model = tiny_model("llama", 0)
    graphdef, state = nnx.split(model)
    rules = parallel.DEFAULT_RULES
    weights = slot_programs.decode_weights(state, mesh=None, rules=rules)
    slots = slot_programs.empty_slots(cfg=model.cfg, num_slots=4, cache_len=64, max_new=32, pad_id=0, mesh=None,
                                      rules=rules)
    settings = slot_programs.DrawSettings(1.0, 0, 1.0, (STOP,), 32)
    compiled = slot_programs.decode_chunk.trace(graphdef, state, weights, slots, jax.random.key(0), np.int32(1),
                                                settings=settings, steps=4, window=48, mesh=None, rules=rules
                                                ).lower().compile()
    slot_bytes = sum(x.nbytes for x in jax.tree.leaves(slots))
    memory = compiled.memory_analysis()
    assert memory.alias_size_in_bytes == slot_bytes
    assert memory.output_size_in_bytes - memory.alias_size_in_bytes < slot_bytes // 10


def test_prefill_in_pieces_equals_one_piece():
    """A call's prompts prefilled in 4 pieces (prompts i, i + 4, ...) give the cache and next-token logits of
    one pass, row for row."""
    model = tiny_model("qwen2", 2)
    graphdef, state = nnx.split(model)
    rules = parallel.DEFAULT_RULES
    weights = slot_programs.decode_weights(state, mesh=None, rules=rules)
    ids, mask = left_padded_batch(random_prompts(5, count=8))
    whole, pieces = (slot_programs.prefill(graphdef, state, weights, ids, mask, pieces=n, mesh=None, rules=rules)
                     for n in (1, 4))
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(pieces), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prompts, length, shards, pieces", [
    (128, 8192, 8, 8),  # the paper's revision call: 2 prompts of 8,192 per device in each piece
    (16, 2048, 8, 1), (64, 2048, 8, 1),  # rollouts, validation: 16,384 tokens per device at most already
    (128, 2048, 1, 16),  # one device: 8 prompts of 2,048 a piece
    (3, 100_000, 1, 1),  # a count that does not halve: one piece, one prompt over the budget
])
def test_prefill_pieces_keep_each_device_within_its_token_budget(prompts, length, shards, pieces):
    assert slot_programs.prefill_pieces(prompts, length, shards) == pieces
