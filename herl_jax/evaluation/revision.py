"""Test-time iterative guided revision (ALGORITHM.md §9; the paper's Fig. 4b).

Round 1 samples `chains` answers per prompt. Each later round revises a chain's previous answer, with
its satisfied and unmet rubric items as hindsight experience, through the revise prompt of training
(`herl_jax.herl.revise_prompt_ids`, same templates and chat wrapping); the revision is graded against
the original prompt and rubric. A chain stops once an answer succeeds (reward >= the success
threshold, as HeRL stops revising a solved prompt), so R rounds spend at most R samples per chain:
the budget of pass@R. A revise prompt longer than `max_prompt_len` ends its chain.

Record per example: {"id", "complete": true, "chains": [{"responses": [...], "rewards": [...],
"stopped": "success" | "rounds" | "too_long"}], "unscored": rubric items left unscored by a failed
judge call or checker, counted as unmet}.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Sequence

from herl_jax.evaluation.data import Example
from herl_jax.evaluation.generation import Policy, length_sorted_batches
from herl_jax.evaluation.grading import Graded, Grader
from herl_jax.evaluation.store import ResultStore
from herl_jax.herl import revise_prompt_ids
from herl_jax.sampling import SamplingConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RevisionConfig:
    rounds: int  # R: samples per chain at most (round 1 + R - 1 revisions)
    chains: int  # independent chains per prompt
    success_threshold: float  # a chain stops at an answer with reward >= this
    max_prompt_len: int  # longest revise prompt, in tokens
    prompt: object  # the revise-prompt config of training (herl.prompt), its template chosen


@dataclasses.dataclass
class _Chain:
    example: Example
    responses: list[str] = dataclasses.field(default_factory=list)
    grades: list[Graded] = dataclasses.field(default_factory=list)
    stopped: str | None = None

    def add(self, response: str, graded: Graded, threshold: float) -> None:
        self.responses.append(response)
        self.grades.append(graded)
        if graded.reward >= threshold:
            self.stopped = "success"

    def record(self) -> dict:
        return {"responses": self.responses, "rewards": [g.reward for g in self.grades],
                "stopped": self.stopped or "rounds"}


def revise(benchmark: str, examples: Sequence[Example], policy: Policy, grader: Grader, store: ResultStore,
           sampling: SamplingConfig, config: RevisionConfig, batch_size: int) -> dict[str, dict]:
    """id -> record for every example, running the examples without a stored record."""
    if any(ex.rubric is None for ex in examples):
        raise ValueError(f"{benchmark} has no binary rubric to give hindsight feedback")
    stored = store.load()
    fresh = [ex for ex in examples if ex.id not in stored]
    if fresh:
        prompt_ids = policy.encode([ex.messages for ex in fresh])
        fits = [(ex, ids) for ex, ids in zip(fresh, prompt_ids) if len(ids) <= sampling.max_prompt_len]
        store.append({"id": ex.id, "complete": True, "skipped": "prompt longer than max_prompt_len"}
                     for ex, ids in zip(fresh, prompt_ids) if len(ids) > sampling.max_prompt_len)
        per_call = max(1, batch_size // config.chains)
        start, done = time.monotonic(), 0
        for number, group in enumerate(length_sorted_batches(fits, [len(i) for _, i in fits], per_call)):
            chains = _run_group(benchmark, group, policy, grader, sampling.replace(seed=sampling.seed + 1000 * number),
                                config)
            store.append(_group_records(group, chains, config.chains))
            done += len(group)
            log.info("%s: %d/%d examples revised (%d chains x %d rounds), %.0f s", benchmark, done, len(fits),
                     config.chains, config.rounds, time.monotonic() - start)
    records = store.load()
    return {ex.id: records[ex.id] for ex in examples}


def _run_group(benchmark, group, policy, grader, sampling, config) -> list[_Chain]:
    """All rounds for a group of (example, prompt ids); chains are example-major."""
    first = policy.sample([ids for _, ids in group], sampling.replace(n=config.chains))
    chains = [_Chain(ex) for ex, _ in group for _ in range(config.chains)]
    _grade_into(benchmark, grader, chains, [t for texts in first for t in texts], config)
    revise_sampling = sampling.replace(n=1, max_prompt_len=config.max_prompt_len)
    for round_number in range(2, config.rounds + 1):
        active = [c for c in chains if c.stopped is None]
        prompts = [revise_prompt_ids(policy.tokenizer, c.example.prompt, c.grades[-1].result, c.responses[-1],
                                     config.prompt) for c in active]
        for chain, ids in zip(active, prompts):
            if len(ids) > config.max_prompt_len:
                chain.stopped = "too_long"
        ready = [(c, ids) for c, ids in zip(active, prompts) if c.stopped is None]
        if not ready:
            break
        texts = policy.sample([ids for _, ids in ready], revise_sampling.replace(seed=sampling.seed + round_number))
        _grade_into(benchmark, grader, [c for c, _ in ready], [t[0] for t in texts], config)
    return chains


def _grade_into(benchmark, grader, chains, texts, config) -> None:
    for chain, text, graded in zip(chains, texts, grader.grade(benchmark, [c.example for c in chains], texts)):
        chain.add(text, graded, config.success_threshold)


def _group_records(group, chains, per_example: int) -> list[dict]:
    records = []
    for i, (example, _) in enumerate(group):
        own = chains[i * per_example:(i + 1) * per_example]
        unscored = sum(not v.scored for c in own for g in c.grades for v in g.result.verdicts)
        records.append({"id": example.id, "complete": True, "chains": [c.record() for c in own],
                        "unscored": unscored})
    return records
