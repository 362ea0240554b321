"""Every sampler call of an evaluation sizes its caches for the benchmark's own prompts, not for the config's
`max_prompt_len` (4,096 by default): the sampler gives every slot a cache of `slot_cache_len(config)`
positions, and IFEval's prompts, at most a few hundred tokens, held 10x the cache they need (12 GiB for
SmolLM2-135M)."""

from herl_jax.buckets import round_up
from herl_jax.evaluation.config import default_config
from herl_jax.evaluation.pipeline import evaluate_policies
from herl_jax.sampling.sampler import slot_cache_len

LIMIT = 8


class LengthPolicy:
    """Policy's interface without a model: a prompt of 3 tokens per word of its text; records each call's
    prompt lengths and sampling config."""

    def __init__(self):
        self.calls = []

    def encode(self, conversations):
        return [[7] * (3 * len(c[-1]["content"].split())) for c in conversations]

    def sample(self, prompt_ids, config):
        self.calls.append(([len(ids) for ids in prompt_ids], config))
        return [["Done."] * config.n for _ in prompt_ids]


def test_each_call_caches_the_longest_prompt_and_not_much_more(tmp_path):
    policy, c = LengthPolicy(), default_config()
    c.batch_size = 2  # several sampler calls, the shortest prompts first
    evaluate_policies(c, [("lengths", "unused", policy)], ["ifeval"], tmp_path, limit=LIMIT)

    longest = max(length for lengths, _ in policy.calls for length in lengths)
    assert len(policy.calls) == LIMIT // 2 and longest > c.greedy.prompt_bucket  # the test means something
    for lengths, config in policy.calls:
        prompt_part = slot_cache_len(config) - config.max_new_tokens
        assert max(lengths) <= config.max_prompt_len and longest <= prompt_part  # every prompt fits
        # within the buckets' 1.5x (two sizes per doubling) and one bucket of rounding, far below 4,096
        assert prompt_part <= round_up(1.5 * longest, c.greedy.prompt_bucket) < c.greedy.max_prompt_len
