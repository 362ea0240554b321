"""Shape bucketing shared by the sampler, the update and the memory planner: padded sizes come from one rule,
so that similar calls reuse one compiled program (recompilation is a bug).

Every sampler size grows geometrically, so a config compiles a few programs per doubling, not one per
multiple of a bucket: the prompt length and the attention window in two sizes per doubling (1, 2, 3, 4, 6,
8, 12, ... times `prompt_bucket` or `cache_block`: at most 1.5x what is needed from 2 on), the prompt count
in powers of `prompt_count_base` (4 by default) per batch shard, and the decode slots in quarters of
`decode_slots`.

The prompt count is the coarsest because its padding is the cheapest: filler prompts are prefilled but never
decoded (the slots are sized by the real rows), while a longer prompt bucket is read again by every decode
step's attention. Where prefill is a large share of a call (a CPU, short replies), base 2 halves the worst
filler prefill for one more prefill program per doubling of the count.
"""


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n (n >= 0, multiple >= 1)."""
    if multiple < 1:
        raise ValueError(f"bucket size must be >= 1, got {multiple}")
    return -(-int(n) // multiple) * multiple


def next_power_of_two(n: int) -> int:
    """The smallest power of two >= n (n >= 1)."""
    return 1 << (int(n) - 1).bit_length()


def two_per_doubling(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, ... (2^k and 3 x 2^k) that is >= n (n >= 1)."""
    power = next_power_of_two(n)
    return power * 3 // 4 if power >= 4 and power * 3 // 4 >= n else power


def prompt_bucket_len(longest: int, bucket: int, max_prompt_len: int) -> int:
    """The sampler's padded prompt length: `bucket` times `two_per_doubling` of the buckets `longest` needs,
    at most the bucket of the longest prompt allowed (`max_prompt_len` rounded up to `bucket`)."""
    return min(bucket * two_per_doubling(-(-int(longest) // bucket)), round_up(max_prompt_len, bucket))


def prompt_bucket_count(num_prompts: int, batch_shards: int = 1, base: int = 4) -> int:
    """The sampler's padded number of prompts: a power of `base` per batch shard (base 4: 1, 4, 16, 64, ...;
    num_prompts >= 1, base >= 2), so that a call kind compiles few prefill programs. Filler prompts cost their
    prefill and their prompt cache (less than `base` times the real prompts', counted by herl_jax.plan), never
    a decode step; fewer than one prompt per shard would leave devices idle anyway."""
    if base < 2:
        raise ValueError(f"prompt count base must be >= 2, got {base}")
    per_shard, bucket = -(-int(num_prompts) // batch_shards), 1
    while bucket < per_shard:
        bucket *= base
    return batch_shards * bucket


def decode_slot_count(rows: int, decode_slots: int, batch_shards: int = 1) -> int:
    """Rows the sampler decodes at once for `rows` request rows (the real prompts' samples, not the filler
    prompts'): `decode_slots` per batch shard at most, fewer for a smaller call, in steps of a quarter of
    that (so at most four slot counts per config); `decode_slots=0` is the static batch, one slot per row,
    the rows padded to a power of two per shard."""
    if not decode_slots:
        return batch_shards * next_power_of_two(-(-int(rows) // batch_shards))
    most = decode_slots * batch_shards
    return min(most, round_up(rows, batch_shards * -(-decode_slots // 4)))


def window_bucket(needed: int, cache_block: int, cache_len: int) -> int:
    """Cache slots a decode step attends over when its rows' keys need the first `needed`: `cache_block`
    times `two_per_doubling` of the blocks needed, capped at the cache's length."""
    return min(cache_block * two_per_doubling(-(-int(needed) // cache_block)), cache_len)
