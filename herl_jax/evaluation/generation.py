"""Texts from the policy through our jitted sampler, in length-sorted batches.

The sampler pads prompts up to a multiple of `prompt_bucket` and the prompt count up to a power of
two, compiling one program per shape; sorting prompts by length before batching keeps each batch's
padding small and the number of distinct shapes low.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

from herl_jax.sampling import SamplingConfig, encode_chats, generate, stop_ids_for

T = TypeVar("T")


def length_sorted_batches(items: Sequence[T], lengths: Sequence[int], size: int) -> Iterator[list[T]]:
    """`items` in batches of `size`, shortest prompts first."""
    order = sorted(range(len(items)), key=lambda i: lengths[i])
    for start in range(0, len(order), size):
        yield [items[i] for i in order[start:start + size]]


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
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        output = generate(model, prompt_ids, config.replace(stop_token_ids=stop_ids), pad_id=pad_id)
        texts = [tokenizer.decode(output.completion(r), skip_special_tokens=True) for r in range(len(output.lengths))]
        return [texts[i * config.n:(i + 1) * config.n] for i in range(len(prompt_ids))]
