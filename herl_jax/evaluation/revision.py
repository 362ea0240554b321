"""Test-time iterative guided revision (docs/algorithm.md §9; the paper's Fig. 4b): generate and grade in rounds.

Round 1 samples `chains` answers per prompt. Each later round revises a chain's previous answer, with
its satisfied and unmet rubric items as hindsight experience, through the revise prompt of training
(`herl_jax.herl.revise_prompt_ids`, same templates and chat wrapping); the revision is graded against
the original prompt and rubric. A chain stops once an answer succeeds (reward >= the success
threshold, as HeRL stops revising a solved prompt), so R rounds spend at most R samples per chain:
the budget of pass@R. A revise prompt longer than `max_prompt_len` ends its chain.

Record per item: {"id", "complete": true, "chains": [{"responses": [...], "rewards": [...],
"stopped": "success" | "rounds" | "too_long"}], "unscored": rubric items left unscored by a failed
judge call or checker, counted as unmet}.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Sequence

from herl_jax.evaluation.data import BenchmarkItem
from herl_jax.evaluation.generate import (Policy, Prompt, encode, fitted_to, generate_responses,
                                          length_sorted_batches)
from herl_jax.evaluation.grade import Graded, Grader
from herl_jax.evaluation.store import ResultStore, skipped_record
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


@dataclasses.dataclass(frozen=True)
class Chain:
    """One chain's answers so far and their grades; `stopped` says why it ended (None: still running)."""

    item: BenchmarkItem
    responses: tuple[str, ...] = ()
    grades: tuple[Graded, ...] = ()
    stopped: str | None = None

    def extended(self, response: str, graded: Graded, threshold: float) -> Chain:
        return Chain(self.item, (*self.responses, response), (*self.grades, graded),
                     "success" if graded.reward >= threshold else self.stopped)

    def record(self) -> dict:
        return {"responses": list(self.responses), "rewards": [g.reward for g in self.grades],
                "stopped": self.stopped or "rounds"}


def revise(benchmark: str, items: Sequence[BenchmarkItem], policy: Policy, grader: Grader, store: ResultStore,
           sampling: SamplingConfig, config: RevisionConfig, batch_size: int) -> dict[str, dict]:
    """id -> record for every item, running the items without a stored record."""
    if any(item.rubric is None for item in items):
        raise ValueError(f"{benchmark} has no binary rubric to give hindsight feedback")
    stored = store.load()
    prompts = encode(policy, [item for item in items if item.id not in stored])
    store.append(skipped_record(p.item.id, "prompt longer than max_prompt_len")
                 for p in prompts if len(p.ids) > sampling.max_prompt_len)
    fits = [p for p in prompts if len(p.ids) <= sampling.max_prompt_len]
    sampling = fitted_to(sampling, fits)
    start, done = time.monotonic(), 0
    for number, group in enumerate(length_sorted_batches(fits, max(1, batch_size // config.chains))):
        chains = _run_group(benchmark, group, policy, grader, sampling.replace(seed=sampling.seed + 1000 * number),
                            config)
        store.append(_group_records(group, chains, config.chains))
        done += len(group)
        log.info("%s: %d/%d items revised (%d chains x %d rounds), %.0f s", benchmark, done, len(fits),
                 config.chains, config.rounds, time.monotonic() - start)
    records = store.load()
    return {item.id: records[item.id] for item in items}


def _run_group(benchmark: str, group: Sequence[Prompt], policy: Policy, grader: Grader, sampling: SamplingConfig,
               config: RevisionConfig) -> list[Chain]:
    """All rounds for a group of prompts; chains are item-major."""
    first = generate_responses(policy, group, sampling.replace(n=config.chains))
    chains = _graded(benchmark, grader, [Chain(g.item) for g in first for _ in g.responses],
                     [r for g in first for r in g.responses], config)
    revise_sampling = sampling.replace(n=1, max_prompt_len=config.max_prompt_len)
    for round_number in range(2, config.rounds + 1):
        revise_prompts = {i: Prompt(c.item, tuple(revise_prompt_ids(
            policy.tokenizer, c.item.prompt, c.grades[-1].result, c.responses[-1], config.prompt)))
            for i, c in enumerate(chains) if c.stopped is None}
        for i, prompt in revise_prompts.items():
            if len(prompt.ids) > config.max_prompt_len:
                chains[i] = dataclasses.replace(chains[i], stopped="too_long")
        ready = [i for i in revise_prompts if chains[i].stopped is None]
        if not ready:
            break
        round_prompts = [revise_prompts[i] for i in ready]
        revised = generate_responses(policy, round_prompts, fitted_to(revise_sampling, round_prompts).replace(
            seed=sampling.seed + round_number))
        for i, chain in zip(ready, _graded(benchmark, grader, [chains[i] for i in ready],
                                           [g.responses[0] for g in revised], config)):
            chains[i] = chain
    return chains


def _graded(benchmark: str, grader: Grader, chains: Sequence[Chain], responses: Sequence[str],
            config: RevisionConfig) -> list[Chain]:
    """Each chain extended by its response and the response's grade."""
    grades = grader.grade(benchmark, [c.item for c in chains], responses)
    return [c.extended(r, g, config.success_threshold) for c, r, g in zip(chains, responses, grades)]


def _group_records(group: Sequence[Prompt], chains: Sequence[Chain], per_item: int) -> list[dict]:
    records = []
    for i, prompt in enumerate(group):
        own = chains[i * per_item:(i + 1) * per_item]
        unscored = sum(not v.scored for c in own for g in c.grades for v in g.result.verdicts)
        records.append({"id": prompt.item.id, "complete": True, "chains": [c.record() for c in own],
                        "unscored": unscored})
    return records
