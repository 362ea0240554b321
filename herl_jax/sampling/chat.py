"""Text in, text out: chat messages -> chat template (herl_jax.chat_tokens) -> sampler -> decoded completions."""

from __future__ import annotations

from typing import Callable, Sequence

from herl_jax.chat_tokens import encode_chats
from herl_jax.models import Decoder
from herl_jax.sampling.config import SamplingConfig
from herl_jax.sampling.sampler import SampleOutput, generate

Message = dict[str, str]  # {"role": ..., "content": ...}


def stop_ids_for(tokenizer, model: Decoder) -> tuple[int, ...]:
    """The model's end-of-turn ids: its config's eos ids plus the tokenizer's eos id."""
    ids = set(model.cfg.eos_token_ids)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return tuple(sorted(ids))


def pad_id_for(tokenizer) -> int:
    """The id that pads rows: the tokenizer's pad token, else its eos token (never attended to), else 0."""
    return next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)


def decode_completions(tokenizer, output: SampleOutput) -> list[str]:
    """The text of every completion row of `output` (prompt-major, `n` rows per prompt), special tokens dropped."""
    return [tokenizer.decode(output.completion(r), skip_special_tokens=True) for r in range(len(output.lengths))]


def chat(model: Decoder, tokenizer, conversations: Sequence[Sequence[Message]], config: SamplingConfig,
         progress: Callable[[int], None] | None = None) -> tuple[list[list[str]], SampleOutput]:
    """Replies to each conversation: `config.n` texts per conversation, plus the raw sampler output.

    When `config.stop_token_ids` is empty, the model's end-of-turn tokens are used. `progress` is called
    with the replies finished so far as decoding goes (the sampler's `progress`).
    """
    if not config.stop_token_ids:
        config = config.replace(stop_token_ids=stop_ids_for(tokenizer, model))
    output = generate(model, encode_chats(tokenizer, conversations), config, pad_id=pad_id_for(tokenizer),
                      progress=progress)
    texts = decode_completions(tokenizer, output)
    return [texts[i * config.n:(i + 1) * config.n] for i in range(len(conversations))], output
