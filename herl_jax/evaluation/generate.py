"""Stage 2, generate: benchmark items -> the policy's responses, through our jitted sampler.

`encode` turns items into `Prompt`s (chat-templated token ids), `length_sorted_batches` groups them,
and `generate_responses` makes one sampler call per batch, returning a `Generation` per prompt. The
sampler pads prompts up to a multiple of `prompt_bucket` and the prompt count up to a power of two,
compiling one program per shape; sorting prompts by length before batching keeps each batch's padding
small and the number of distinct shapes low.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Sequence

from herl_jax.buckets import prompt_bucket_len
from herl_jax.evaluation.data import BenchmarkItem
from herl_jax.sampling import SamplingConfig, decode_completions, encode_chats, generate, pad_id_for, stop_ids_for


@dataclasses.dataclass(frozen=True)
class Prompt:
    """Token ids for the policy to answer; `item` is what the answers are graded against."""

    item: BenchmarkItem
    ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Generation:
    """The `n` responses sampled for one item."""

    item: BenchmarkItem
    responses: tuple[str, ...]


class Policy:
    """A model and its tokenizer, loaded on first use (a rerun with nothing left to sample never loads it).

    `load` returns (model, tokenizer), e.g. `lambda: load_policy(source, dtype="float32")`.
    """

    def __init__(self, load: Callable[[], tuple]):
        self._load_fn = load
        self._loaded = None

    def _load(self):
        if self._loaded is None:
            model, tokenizer = self._load_fn()
            self._loaded = model, tokenizer, stop_ids_for(tokenizer, model)
        return self._loaded

    @property
    def tokenizer(self):
        return self._load()[1]

    def encode(self, conversations: Sequence[Sequence[dict]]) -> list[list[int]]:
        """Chat-templated token ids of each conversation, ready for the assistant's turn."""
        return encode_chats(self.tokenizer, [list(c) for c in conversations])

    def sample(self, prompt_ids: Sequence[Sequence[int]], config: SamplingConfig) -> list[list[str]]:
        """`config.n` decoded completions per prompt, in one sampler call."""
        model, tokenizer, stop_ids = self._load()
        output = generate(model, prompt_ids, config.replace(stop_token_ids=stop_ids), pad_id=pad_id_for(tokenizer))
        texts = decode_completions(tokenizer, output)
        return [texts[i * config.n:(i + 1) * config.n] for i in range(len(prompt_ids))]


def encode(policy: Policy, items: Sequence[BenchmarkItem]) -> list[Prompt]:
    """Each item's conversation as the policy's prompt (no items: the policy is not loaded)."""
    if not items:
        return []
    return [Prompt(item, tuple(ids)) for item, ids in zip(items, policy.encode([item.messages for item in items]))]


def fitted_to(config: SamplingConfig, prompts: Sequence[Prompt]) -> SamplingConfig:
    """`config` with `max_prompt_len` cut to the prompt bucket of the longest of `prompts` (a benchmark's
    prompts are all known before it is sampled). The sampler sizes every slot's cache for `max_prompt_len`
    (herl_jax.sampling.sampler.slot_cache_len): under the default 4,096, IFEval's first 100 prompts (at most
    139 tokens, bucket 192) held 10x the cache they need, 12.0 GiB for SmolLM2-135M in float32 at 64 slots and
    256 new tokens against 1.2 GiB."""
    if not prompts:
        return config
    longest = max(len(p.ids) for p in prompts)
    return config.replace(max_prompt_len=prompt_bucket_len(longest, config.prompt_bucket, config.max_prompt_len))


def length_sorted_batches(prompts: Sequence[Prompt], size: int) -> Iterator[list[Prompt]]:
    """`prompts` in batches of `size`, shortest first."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].ids))
    for start in range(0, len(order), size):
        yield [prompts[i] for i in order[start:start + size]]


def generate_responses(policy: Policy, prompts: Sequence[Prompt], config: SamplingConfig) -> list[Generation]:
    """`config.n` responses per prompt, in one sampler call."""
    texts = policy.sample([list(p.ids) for p in prompts], config)
    return [Generation(p.item, tuple(responses)) for p, responses in zip(prompts, texts)]
