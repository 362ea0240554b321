"""The sampler's padded prompt sizes (herl_jax.buckets) against a brute-force search."""

import pytest

from herl_jax.buckets import prompt_bucket_count, prompt_bucket_len


@pytest.mark.parametrize("longest, bucket", [(1, 1), (1, 8), (8, 8), (9, 8), (100, 16), (2048, 256), (2049, 256)])
def test_prompt_length_is_the_smallest_multiple_of_the_bucket_that_fits(longest, bucket):
    expected = next(m for m in range(bucket, 10 * longest + bucket, bucket) if m >= longest)
    assert prompt_bucket_len(longest, bucket) == expected


@pytest.mark.parametrize("prompts", [1, 2, 3, 4, 5, 63, 64, 65, 100])
def test_prompt_count_is_the_next_power_of_two(prompts):
    expected = next(2**k for k in range(10) if 2**k >= prompts)
    assert prompt_bucket_count(prompts) == expected
