"""Shape bucketing shared by the sampler, the update and the memory planner: padded sizes come from one rule,
so that similar calls reuse one compiled program (recompilation is a bug).

Every sampler size grows geometrically, so a config compiles a few programs per doubling, not one per
multiple of a bucket: the prompt length (powers of two times `prompt_bucket`), the prompt count (powers of
two per batch shard), the decode slots (quarters of `decode_slots`) and the attention window (two sizes per
doubling: 1, 2, 3, 4, 6, 8, 12, ... cache blocks).
"""


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n (n >= 0, multiple >= 1)."""
    if multiple < 1:
        raise ValueError(f"bucket size must be >= 1, got {multiple}")
    return -(-int(n) // multiple) * multiple


def next_power_of_two(n: int) -> int:
    """The smallest power of two >= n (n >= 1)."""
    return 1 << (int(n) - 1).bit_length()


def prompt_bucket_len(longest: int, bucket: int, max_prompt_len: int) -> int:
    """The sampler's padded prompt length: `bucket` times the smallest power of two that fits `longest`,
    at most the bucket of the longest prompt allowed (`max_prompt_len` rounded up to `bucket`)."""
    return min(bucket * next_power_of_two(-(-int(longest) // bucket)), round_up(max_prompt_len, bucket))


def prompt_bucket_count(num_prompts: int, batch_shards: int = 1) -> int:
    """The sampler's padded number of prompts: a power of two per batch shard (num_prompts >= 1); fewer than
    one prompt per shard would leave devices idle anyway."""
    return batch_shards * next_power_of_two(-(-int(num_prompts) // batch_shards))


def decode_slot_count(rows: int, decode_slots: int, batch_shards: int = 1) -> int:
    """Rows the sampler decodes at once for `rows` request rows: `decode_slots` per batch shard at most,
    fewer for a smaller call, in steps of a quarter of that (so at most four slot counts per config);
    `decode_slots=0` is the static batch, one slot per row."""
    if not decode_slots:
        return rows
    most = decode_slots * batch_shards
    return min(most, round_up(rows, batch_shards * -(-decode_slots // 4)))


def window_bucket(needed: int, cache_block: int, cache_len: int) -> int:
    """Cache slots a decode step attends over when its rows' keys need the first `needed`: the smallest of
    1, 2, 3, 4, 6, 8, 12, ... times `cache_block` that covers them (at most 1.5x the blocks needed from 2 on),
    capped at the cache's length."""
    blocks = -(-int(needed) // cache_block)
    half = next_power_of_two(blocks)
    size = half * 3 // 4 if half >= 2 and half * 3 // 4 >= blocks else half
    return min(cache_block * size, cache_len)
