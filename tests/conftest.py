"""Shared test setup: CPU only, float32 matmuls at full precision, quiet logs."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests never touch a model hub

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smollm2():
    """(our model, tokenizer, transformers' model) for the real SmolLM2-135M-Instruct GGUF, loaded once."""
    import torch
    import transformers

    from herl_jax.models import load_policy
    from herl_jax.models.loading import resolve_source

    model, tokenizer = load_policy("smollm2-135m-instruct")
    _, path = resolve_source("smollm2-135m-instruct")
    reference = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    return model, tokenizer, reference


# Tests marked slow (minutes each: several processes, or several trainer runs) run when
# HERL_SLOW_TESTS=1, so the default suite fits CI's 20 minutes on 2 cores; each was run before it was marked.
def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes long; runs only with HERL_SLOW_TESTS=1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HERL_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set HERL_SLOW_TESTS=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
