"""Shape bucketing shared by the sampler, the update and the memory planner: padded sizes come from one rule,
so that similar calls reuse one compiled program (recompilation is a bug)."""


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n (n >= 0, multiple >= 1)."""
    if multiple < 1:
        raise ValueError(f"bucket size must be >= 1, got {multiple}")
    return -(-int(n) // multiple) * multiple


def prompt_bucket_len(longest: int, bucket: int) -> int:
    """The sampler's padded prompt length: the longest prompt's length rounded up to `bucket`."""
    return round_up(longest, bucket)


def prompt_bucket_count(num_prompts: int) -> int:
    """The sampler's padded number of prompts: the next power of two (num_prompts >= 1)."""
    return 1 << (int(num_prompts) - 1).bit_length()
