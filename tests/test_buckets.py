"""The sampler's padded sizes (herl_jax.buckets) against brute-force searches of the rules they state, and the
number of distinct sizes they allow."""

import pytest

from herl_jax.buckets import decode_slot_count, prompt_bucket_count, prompt_bucket_len, window_bucket

SERIES = sorted({m for k in range(24) for m in (2**k, 3 * 2**k)})  # 1, 2, 3, 4, 6, 8, 12, 16, 24, ...


@pytest.mark.parametrize("longest, bucket, most", [(1, 1, 9), (1, 8, 64), (8, 8, 64), (9, 8, 64), (17, 8, 64),
                                                   (100, 16, 100), (2048, 256, 8192), (2049, 256, 8192),
                                                   (4097, 256, 5000)])
def test_prompt_length_is_the_bucket_times_two_sizes_per_doubling(longest, bucket, most):
    cap = next(m for m in range(bucket, most + bucket + 1, bucket) if m >= most)
    expected = min(next(bucket * m for m in SERIES if bucket * m >= longest), cap)
    assert prompt_bucket_len(longest, bucket, most) == expected
    assert longest <= prompt_bucket_len(longest, bucket, most)


def test_prompt_lengths_grow_geometrically():
    lengths = {prompt_bucket_len(n, 256, 8192) for n in range(1, 8193)}
    assert sorted(lengths) == [256 * m for m in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)]
    # The first three multiples of the bucket stay as they were (a short config's prompts pad as before).
    assert {prompt_bucket_len(n, 64, 192) for n in range(1, 193)} == {64, 128, 192}


@pytest.mark.parametrize("base", [4, 2, 3])
@pytest.mark.parametrize("prompts, shards", [(1, 1), (2, 1), (3, 1), (5, 1), (64, 1), (65, 1), (100, 1),
                                             (1, 8), (8, 8), (9, 8), (112, 8), (5, 6), (13, 6)])
def test_prompt_count_is_a_power_of_the_base_per_shard(prompts, shards, base):
    expected = next(shards * base**k for k in range(24) if shards * base**k >= prompts)
    assert prompt_bucket_count(prompts, shards, base) == expected
    assert prompt_bucket_count(prompts, shards, base) < base * max(prompts, shards)  # the padding's bound
    if base == 4:
        assert prompt_bucket_count(prompts, shards) == expected  # the default


def test_a_prompt_count_base_below_two_is_refused():
    with pytest.raises(ValueError, match="base must be >= 2"):
        prompt_bucket_count(3, 1, base=1)


def test_a_call_kind_of_up_to_112_prompts_on_8_shards_prefills_three_counts():
    # configs/paper.py's revision calls: up to 16 prompts x 7 candidates, on fsdp=8 (power of two: 5 counts)
    assert {prompt_bucket_count(p, 8) for p in range(1, 113)} == {8, 32, 128}


@pytest.mark.parametrize("decode_slots, shards", [(64, 8), (64, 1), (3, 1), (6, 2), (0, 4)])
def test_slot_count_covers_the_rows_up_to_decode_slots_per_shard_in_at_most_four_sizes(decode_slots, shards):
    counts = {r: decode_slot_count(r, decode_slots, shards) for r in range(1, 3 * decode_slots * shards + 2)}
    for rows, slots in counts.items():
        if decode_slots == 0:  # the static batch: one slot per row, a power of two per shard
            per_shard = slots // shards
            assert slots % shards == 0 and per_shard & (per_shard - 1) == 0
            assert rows <= slots < 2 * max(rows, shards)
            continue
        assert slots % shards == 0 and slots <= decode_slots * shards
        assert slots >= min(rows, decode_slots * shards)
    if decode_slots:
        assert len(set(counts.values())) <= 4


@pytest.mark.parametrize("block, cache_len", [(1, 100), (64, 12288), (16, 200)])
def test_window_is_within_one_and_a_half_times_the_blocks_needed(block, cache_len):
    series = [block * m for m in SERIES]
    windows = set()
    for needed in range(1, cache_len + 1):
        window = window_bucket(needed, block, cache_len)
        windows.add(window)
        assert window == min(next(w for w in series if w >= needed), cache_len)
        blocks_needed = -(-needed // block)
        assert window <= cache_len and (window >= needed)
        assert window <= max(2 * block, 1.5 * blocks_needed * block)
    assert len(windows) <= 2 * (cache_len // block).bit_length() + 1
