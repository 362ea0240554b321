"""Shared test pieces: a tiny word-level tokenizer and random decoder, and a scripted policy."""

from __future__ import annotations

from flax import nnx
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from herl_jax.evaluation.generate import Policy
from herl_jax.models import Decoder, ModelConfig

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
WORDS = ["apple", "banana", "cherry", "river", "stone", "green", "quiet", "light", ",", ".", "!"]
SPECIAL = ["[UNK]", "[PAD]", "<|user|>", "<|assistant|>", "<|end|>"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level: the special tokens, then WORDS; every other word is [UNK] (nothing downloaded)."""
    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="<|end|>",
                                   additional_special_tokens=SPECIAL[2:], chat_template=CHAT_TEMPLATE)


def tiny_policy(seed: int = 0) -> Policy:
    """A random 2-layer decoder over the tiny tokenizer's vocabulary."""
    cfg = ModelConfig(family="llama", vocab_size=len(SPECIAL) + len(WORDS), hidden_size=16, intermediate_size=32,
                      num_layers=2, num_heads=2, num_kv_heads=1, head_dim=8, eos_token_ids=(SPECIAL.index("<|end|>"),))
    model, tokenizer = Decoder(cfg, nnx.Rngs(seed)), tiny_tokenizer()
    return Policy(lambda: (model, tokenizer))


class ScriptedPolicy:
    """Policy's interface without a model: `reply(last_message_text, sample_index) -> response`.

    `calls` counts sampler calls and `rows` the sequences sampled.
    """

    def __init__(self, reply):
        self.reply = reply
        self.calls = 0
        self.rows = 0
        self._texts: list[str] = []

    def encode(self, conversations):
        ids = []
        for conversation in conversations:
            self._texts.append(conversation[-1]["content"])
            ids.append([len(self._texts) - 1])
        return ids

    def sample(self, prompt_ids, config):
        self.calls += 1
        self.rows += len(prompt_ids) * config.n
        return [[self.reply(self._texts[ids[0]], i) for i in range(config.n)] for ids in prompt_ids]
