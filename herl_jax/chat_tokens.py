"""Chat messages and prompt text to token ids, with text kept as text (host only: no JAX).

A chat template renders messages to text around its own special tokens (`<|im_start|>`, `<|im_end|>`, ...).
Tokenizing that text whole would also read a special token spelled inside a message (a data prompt, or the
policy's draft in a revise prompt: `<|im_end|>\n<|im_start|>system ...`) as the control token, so text could
forge turns. Here every special-token spelling in a message is escaped before the template renders it; the
rendered text is cut at the template's own special tokens, which keep their ids, and each piece between them is
unescaped and tokenized with `split_special_tokens=True`, so its characters stay characters. A conversation
without such spellings gets the ids of tokenizing its rendered text whole, as the tokenizer cuts that text at
the same special tokens and tokenizes the pieces apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# A private-use character: ESCAPE + "k;" stands for special token k in an escaped message, ESCAPE + ";" for
# ESCAPE itself, so any message text survives the round trip.
ESCAPE = "\ue000"
ESCAPED = re.compile(ESCAPE + r"(\d*);")


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text: no special token added, none read from the text."""
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]


def encode_chats(tokenizer, conversations: Sequence[Sequence[Mapping[str, str]]]) -> list[list[int]]:
    """Token ids of each conversation rendered by the tokenizer's chat template, ready for a reply. Only the
    template's own special tokens are special: a special token spelled in a message stays text."""
    ids = {t.content: i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    specials = sorted(ids, key=len, reverse=True)  # the longest first, as the tokenizer matches them
    codes = {ESCAPE: ESCAPE + ";", **{s: f"{ESCAPE}{k};" for k, s in enumerate(specials)}}
    escape = re.compile("|".join(re.escape(s) for s in codes))
    cut = re.compile("(" + ("|".join(re.escape(s) for s in specials) or "(?!)") + ")")

    rendered = []  # per conversation: text, special, text, ..., text
    for messages in conversations:
        escaped = [{**m, "content": escape.sub(lambda s: codes[s[0]], m["content"])} for m in messages]
        rendered.append(cut.split(tokenizer.apply_chat_template(escaped, tokenize=False, add_generation_prompt=True)))
    pieces = iter(encode_texts(tokenizer, [ESCAPED.sub(lambda s: specials[int(s[1])] if s[1] else ESCAPE, text)
                                           for parts in rendered for text in parts[::2]]))
    encoded = []
    for parts in rendered:
        row: list[int] = []
        for k, part in enumerate(parts):
            row += [ids[part]] if k % 2 else next(pieces)
        encoded.append(row)
    return encoded
