"""Greedy decoding of the real SmolLM2-135M-Instruct equals transformers' greedy generate, token for token."""

import pytest
import torch

from herl_jax.sampling import SamplingConfig, encode_chats, generate, stop_ids_for
from herl_jax.sampling.chat import chat

QUESTIONS = [
    "What is the capital of Japan?",
    "List three fruits that are red, separated by commas.",
    "Explain in two sentences why the sea is salty.",
    "Hi!",
]


@pytest.mark.parametrize("slots", [0, 3], ids=["static batch", "3 slots, continuous"])
def test_greedy_matches_transformers_generate(smollm2, slots):
    model, tokenizer, reference = smollm2
    prompts = encode_chats(tokenizer, [[{"role": "user", "content": q}] for q in QUESTIONS])
    assert len({len(p) for p in prompts}) == 4
    stop = stop_ids_for(tokenizer, model)
    config = SamplingConfig(temperature=0, max_new_tokens=32, stop_token_ids=stop, decode_slots=slots, decode_chunk=8,
                            cache_block=16)
    out = generate(model, prompts, config)
    for row, prompt in enumerate(prompts):
        with torch.no_grad():
            expected = reference.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt)),
                                          do_sample=False, max_new_tokens=32, eos_token_id=list(stop),
                                          pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()
        assert out.completion(row) == expected
        assert out.finish_reasons[row] == ("stop" if expected[-1] in stop else "length")


def test_chat_returns_text(smollm2):
    model, tokenizer, _ = smollm2
    texts, out = chat(model, tokenizer, [[{"role": "user", "content": "What is 2 + 2?"}]],
                      SamplingConfig(temperature=0, max_new_tokens=24))
    assert len(texts) == 1 and len(texts[0]) == 1
    assert "4" in texts[0][0] and "<|im_end|>" not in texts[0][0]
    assert out.finish_reasons == ("stop",)
