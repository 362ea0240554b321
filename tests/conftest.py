"""Shared test setup: CPU only, float32 matmuls at full precision, quiet logs."""

import os
from pathlib import Path

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


# Tests marked slow (minutes each: several processes, or several trainer runs) run by default, in CI too;
# HERL_SLOW_TESTS=0 skips them for a quicker local pass.
def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes long; HERL_SLOW_TESTS=0 skips it")


# The modules that take a minute or more, longest first (measured with --durations=0). pytest-xdist's
# loadscope hands whole modules to the two workers in collection order, so these go first: a long module
# that came last would leave one worker idle while the other finished it.
LONG_MODULES = (
    "tests/trainer/test_multi_process_signals.py", "tests/trainer/test_multi_process_run.py",
    "tests/cli/test_documented_commands.py", "tests/cli/test_stop_signals.py", "tests/sampling/test_gpu_script.py",
    "tests/sampling/test_continuous.py", "tests/cli/test_rerun_records.py", "tests/sampling/test_smollm2_greedy.py",
    "tests/trainer/test_run.py", "tests/cli/test_run_health.py", "tests/cli/test_user_errors.py",
    "tests/cli/test_preflight.py", "tests/models/test_parity.py", "tests/parallel/test_compiled_programs.py",
)


_STALE = [module for module in LONG_MODULES if not (Path(__file__).parents[1] / module).exists()]
assert not _STALE, f"tests/conftest.py LONG_MODULES names modules that no longer exist: {_STALE}"


def _module_rank(item) -> int:
    module = item.nodeid.split("::")[0]
    return LONG_MODULES.index(module) if module in LONG_MODULES else len(LONG_MODULES)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_module_rank)  # stable: each module's tests keep their order
    if os.environ.get("HERL_SLOW_TESTS") != "0":
        return
    skip = pytest.mark.skip(reason="slow: skipped by HERL_SLOW_TESTS=0")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
