"""The GGUF tokenizer we build without PyTorch against transformers' own GGUF conversion (which needs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from herl_jax.models.gguf_tokenizer import gguf_tokenizer
from herl_jax.models.loading import resolve_source

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "Hello world!", "In 2024 there were 1,234 cats and 3.14159 pies.", "  leading spaces\n\n\ttabs\r\n",
    "émoji 🎉 and 中文 and 日本語 and Ελληνικά", "don't, I'll, we've, they're", "x" * 300,
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<repo_name>a<file_sep>b<|endoftext|>",
    "def f(x):\n    return x ** 2  # square\n", "WRITE IN CAPITALS, no commas; end with 'P.S.'",
]


@pytest.fixture(scope="module")
def tokenizers():
    from transformers import AutoTokenizer

    _, path = resolve_source("smollm2-135m-instruct")
    reference = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    return gguf_tokenizer(path), reference


def _bundled_prompts(limit: int) -> list[str]:
    lines = (REPO / "herl_jax" / "data" / "bundled" / "if_train.jsonl").read_text().splitlines()[:limit]
    return [json.loads(line)["prompt"] for line in lines]


def test_ids_and_texts_equal_transformers_conversion(tokenizers):
    ours, reference = tokenizers
    for text in TEXTS + _bundled_prompts(300):
        ids = ours(text, add_special_tokens=False)["input_ids"]
        assert ids == reference(text, add_special_tokens=False)["input_ids"], text
        assert ours(text)["input_ids"] == reference(text)["input_ids"], text  # no BOS added by either
        assert ours.decode(ids) == reference.decode(ids) == text
        assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)


def test_chat_template_and_special_tokens(tokenizers):
    ours, reference = tokenizers
    conversations = [[{"role": "user", "content": "List 3 rivers."}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]]
    for messages in conversations:
        rendered = ours.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert rendered == reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert len(ours) == len(reference) == 49152
    assert {i: t.content for i, t in ours.added_tokens_decoder.items()} == {
        i: t.content for i, t in reference.added_tokens_decoder.items()}
    # The ids the GGUF metadata names. (transformers' conversion reports <|im_start|> as eos; the file
    # says <|im_end|>, the ChatML end of turn.)
    assert (ours.bos_token, ours.eos_token, ours.unk_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    assert ours.bos_token_id == reference.bos_token_id and ours.unk_token_id == reference.unk_token_id


def test_the_main_job_loads_its_tokenizer_without_torch(tmp_path):
    """The main job's environment has no PyTorch: loading the built-in policy must not import it."""
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
            "from herl_jax.models import load_policy\n"
            "model, tokenizer = load_policy('smollm2-135m-instruct')\n"
            "print(tokenizer.eos_token, 'torch' in sys.modules and sys.modules['torch'] is not None)\n")
    env = dict(os.environ, JAX_PLATFORMS="cpu", HERL_JAX_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["<|im_end|>", "False"]
    assert list((tmp_path / "cache" / "tokenizers").iterdir())  # converted once, then cached
