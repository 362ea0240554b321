"""Shared pieces of the trainer tests: a tiny random Llama checkpoint with the real SmolLM2 tokenizer, small
JSONL data sets of each kind, and a persistent XLA compilation cache so the several Trainers (and the CLI
subprocesses) of the trainer, CLI and report tests compile each function once per test session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

REPO = Path(__file__).resolve().parents[2]
TOPICS = ["rivers", "bread", "owls", "trains", "tea", "snow", "maps", "bees", "clocks", "ferns"]

# Programmatic constraints that 8 random tokens meet sometimes: partial credit with some variance.
HIR_CONSTRAINTS = dict(
    instruction_id_list=["length_constraints:number_words", "keywords:letter_frequency",
                         "change_case:english_lowercase"],
    kwargs=[{"relation": "at least", "num_words": 7}, {"letter": "z", "let_frequency": 1, "let_relation": "at least"},
            {}],
)
RAR_RUBRIC = [
    {"title": "Names a cause", "description": "The answer names at least one cause.", "weight": 3},
    {"title": "Advises a doctor", "description": "The answer advises seeing a doctor when symptoms persist.",
     "weight": 2},
    {"title": "Pitfall", "description": "The answer recommends an unsafe dose.", "weight": -1},
]

_CACHE_OPTIONS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes", "jax_compilation_cache_max_size")
# A size limit turns on JAX's file lock around each cache read and write, so that processes sharing the cache
# never read an entry another is still writing.
_CACHE_MAX_BYTES = 4 << 30


def _session_cache_dir(tmp_path_factory) -> Path:
    """One directory per test session: under pytest-xdist, the directory above the workers' own base
    directories, so both workers (and their subprocesses) share what either compiled."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "xla_cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="package", autouse=True)
def compile_cache(tmp_path_factory):
    """The session's persistent compilation cache for this directory's tests, switched off after its last
    test."""
    path = _session_cache_dir(tmp_path_factory)
    before = {name: getattr(jax.config, name) for name in _CACHE_OPTIONS}
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", _CACHE_MAX_BYTES)
    compilation_cache.reset_cache()  # the cache may have been checked (and found off) by earlier tests
    yield path
    for name, value in before.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="package")
def subprocess_env(compile_cache):
    """The environment for CLI subprocesses: CPU, offline, sharing the compilation cache."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               JAX_DEFAULT_MATMUL_PRECISION=str(jax.config.jax_default_matmul_precision or ""),
               JAX_COMPILATION_CACHE_DIR=str(compile_cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_COMPILATION_CACHE_MAX_SIZE=str(_CACHE_MAX_BYTES),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


@pytest.fixture(scope="package")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A HF checkpoint dir: a random 2-layer Llama (hidden 32) over SmolLM2's vocabulary, and its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from herl_jax.models import load_tokenizer

    directory = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    assert config.vocab_size == 49152
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="package")
def hir_files(tmp_path_factory) -> tuple[Path, Path]:
    """(train, validation) HIR-style files with programmatic constraints."""
    d = tmp_path_factory.mktemp("hir")
    rows = [{"id": f"hir-{i}", "prompt": f"Say something about {t}.", **HIR_CONSTRAINTS} for i, t in enumerate(TOPICS)]
    return write_jsonl(d / "train.jsonl", rows[:8]), write_jsonl(d / "validation.jsonl", rows[8:])


@pytest.fixture(scope="package")
def rar_files(tmp_path_factory) -> tuple[Path, Path]:
    """(train, validation) RaR-Medicine-style files: judged rubric items, one of them a pitfall."""
    d = tmp_path_factory.mktemp("rar")
    rows = [{"id": f"rar-{i}", "question": f"Why might {t} give me a headache?", "reference_answer": "Many reasons.",
             "rubric": RAR_RUBRIC} for i, t in enumerate(TOPICS)]
    return write_jsonl(d / "train.jsonl", rows[:8]), write_jsonl(d / "validation.jsonl", rows[8:])


def config_arg(checkpoint: Path, files: tuple[Path, Path], data_format: str) -> str:
    return f"{checkpoint},{files[0]},{files[1]},{data_format}"
