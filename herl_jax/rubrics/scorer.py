"""The batch entry point for the trainer and the evaluator: (prompt, response, rubric) triples in, results out.

`RubricScorer.score_batch` (the `Scorer` the trainer's step calls) is synchronous. It sends the programmatic
items to the checker pool (`pool.py`) and, at the same time, the judged items to the LLM judge (`judge.py`, on
its own thread and event loop), then aggregates each response with Eq. 4 (`aggregate.py`). Results come back in
input order; every triple gets a result, and an unscored item only ever costs its own sample, per the policy.
Counters accumulate in `scorer.stats`; `take_stats()` hands them over as metrics and starts a new window.
"""

from __future__ import annotations

import concurrent.futures
from typing import Protocol, Sequence

from herl_jax.rubrics.aggregate import rubric_score
from herl_jax.rubrics.config import ScorerConfig
from herl_jax.rubrics.judge_protocol import JudgeRequest
from herl_jax.rubrics.pool import CheckJob, CheckPool
from herl_jax.rubrics.stats import ScoringStats
from herl_jax.rubrics.types import ItemVerdict, Rubric, RubricResult


class Scorer(Protocol):
    """What the step scores with: `RubricScorer`, or a stand-in (a test's scripted scorer). Called from one
    host thread at a time, while the device samples."""

    def score_batch(self, prompts: Sequence[str], responses: Sequence[str],
                    rubrics: Sequence[Rubric]) -> list[RubricResult]:
        """One result per (prompt, response, rubric) triple, in input order."""
        ...


class RubricScorer:
    def __init__(self, config: ScorerConfig = ScorerConfig()):
        self.config = config
        self.stats = ScoringStats()
        self._pool = CheckPool(config.workers, config.check_time_limit_s, config.loose)
        self._judge = None
        if config.judge is not None:  # imported here: `openai` is only needed when a judge is configured
            from herl_jax.rubrics.judge import RubricJudge

            self._judge = RubricJudge(config.judge)

    def __enter__(self) -> RubricScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()
        if self._judge is not None:
            self._judge.close()

    def take_stats(self) -> dict[str, float]:
        """This process's counters since the last call, as flat metrics, and a fresh window. Call between
        batches (once per step): `rubric/zeroed_samples`, `rubric/dropped_samples`, `rubric/check/timeouts`,
        `rubric/judge/failures` and `rubric/judge/failure_causes/<kind>` (timeout, http_429, unparseable, ...);
        the full list is `ScoringStats.as_dict`."""
        stats, self.stats = self.stats, ScoringStats()
        return stats.as_dict()

    def score_batch(
        self, prompts: Sequence[str], responses: Sequence[str], rubrics: Sequence[Rubric]
    ) -> list[RubricResult]:
        if not len(prompts) == len(responses) == len(rubrics):
            raise ValueError(f"{len(prompts)} prompts, {len(responses)} responses, {len(rubrics)} rubrics")
        jobs, job_slots = [], []
        requests, request_slots = [], []
        for sample, (prompt, response, rubric) in enumerate(zip(prompts, responses, rubrics)):
            judged = [j for j, item in enumerate(rubric.items) if item.judged]
            for j, item in enumerate(rubric.items):
                if not item.judged:
                    jobs.append(CheckJob(item.check, prompt, response))
                    job_slots.append((sample, j))
            if judged:
                requests.append(JudgeRequest(prompt, response, tuple(rubric.items[j].text for j in judged)))
                request_slots.extend((sample, j) for j in judged)
        if requests and self._judge is None:
            raise ValueError("some rubric items need the LLM judge, but no judge is configured")

        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as judge_thread:
            judging = judge_thread.submit(self._judge.judge_batch, requests, self.stats.judge) if requests else None
            checked = self._pool.run(jobs, self.stats.checks)
            judged_verdicts = [v for per_request in judging.result() for v in per_request] if judging else []

        verdicts: list[list[ItemVerdict | None]] = [[None] * len(r.items) for r in rubrics]
        for (sample, j), verdict in zip(job_slots + request_slots, checked + judged_verdicts):
            verdicts[sample][j] = verdict
        return [self._result(rubric, tuple(v)) for rubric, v in zip(rubrics, verdicts)]

    def _result(self, rubric: Rubric, verdicts: tuple[ItemVerdict, ...]) -> RubricResult:
        weights = [item.weight for item in rubric.items]
        score = rubric_score(weights, [v.met for v in verdicts], self.config.negative_weights, self.config.unscored)
        unscored = sum(not v.scored for v in verdicts)
        self.stats.responses += 1
        self.stats.items += len(verdicts)
        self.stats.unscored_items += unscored
        self.stats.dropped_samples += score is None
        self.stats.zeroed_samples += bool(unscored) and score is not None
        return RubricResult(rubric=rubric, verdicts=verdicts, score=score)
