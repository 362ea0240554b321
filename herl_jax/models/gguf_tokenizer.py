"""A HF fast tokenizer built from a GGUF file's tokenizer metadata, without PyTorch.

transformers can convert a GGUF tokenizer too, but its GGUF support imports torch, which the main job
does not install (a CPU wheel is not what PyPI serves by default). GGUF files of the "gpt2" tokenizer
model (byte-level BPE, as SmolLM2, Qwen2 and Llama 3 use) carry everything needed: the token strings, the
merges, which tokens are control tokens, the special ids and the chat template.

Pre-tokenization is GPT-2's byte-level regex. llama.cpp's "smollm" / "starcoder" kinds also split digits
one by one first; their vocabularies hold no token with two digits or a space before a digit, so the
plain byte-level split gives the same ids (the tests check this against transformers' conversion).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONTROL, USER_DEFINED = 3, 4  # GGUF token types of special tokens (llama.cpp's enum)


def gguf_tokenizer(path: str | Path):
    """A `PreTrainedTokenizerFast` with the chat template and special tokens of the GGUF file `path`."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    fields = GGUFReader(str(path)).fields

    def value(key: str, default=None):
        return fields[key].contents() if key in fields else default

    kind = value("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ValueError(f"{path}: GGUF tokenizer model {kind!r} is not supported (only byte-level BPE, "
                         "'gpt2'); use a HF checkpoint directory with its tokenizer.json instead")
    tokens = list(value("tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in value("tokenizer.ggml.merges")]
    types = np.asarray(value("tokenizer.ggml.token_type", [1] * len(tokens)))

    backend = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                                   unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    specials = [tokens[i] for i in np.flatnonzero(np.isin(types, (CONTROL, USER_DEFINED)))]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])

    def special(name: str) -> str | None:
        token_id = value(f"tokenizer.ggml.{name}_token_id")
        return tokens[token_id] if token_id is not None and 0 <= token_id < len(tokens) else None

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=special("bos"),
        eos_token=special("eos"),
        unk_token=special("unknown"),
        pad_token=special("padding"),
        chat_template=value("tokenizer.chat_template"),
        clean_up_tokenization_spaces=False,
    )
