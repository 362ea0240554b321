"""Sample n responses per example, grade them, append one record per example: resumable.

Used for Pass@1 (greedy, n = 1) and for pass@k (sampling, n >= k). A record holds

    {"id", "responses": [n texts], "grades": [n benchmark details], "rewards": [n Eq. 4 rewards or
     None], "complete": bool}

or, for a prompt longer than the sampler accepts, {"id", "complete": true, "skipped": why}. A rerun skips finished
examples, grades again the stored responses of incomplete ones (a judge call failed for good), and
samples only the rest.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

from herl_jax.evaluation.data import Example
from herl_jax.evaluation.generation import Policy, length_sorted_batches
from herl_jax.evaluation.grading import Grader
from herl_jax.evaluation.store import ResultStore
from herl_jax.sampling import SamplingConfig

log = logging.getLogger(__name__)


def collect(benchmark: str, examples: Sequence[Example], policy: Policy, grader: Grader, store: ResultStore,
            config: SamplingConfig, batch_size: int, loose: bool = False) -> dict[str, dict]:
    """id -> record for every example in `examples`, sampling and grading what is not finished.

    batch_size: sequences per sampler call (prompts per call = batch_size // n, at least 1).
    loose: grade IFEval / IFBench in loose mode too.
    """
    stored = store.load()
    todo = [ex for ex in examples if not stored.get(ex.id, {}).get("complete", False)]
    regrade = [ex for ex in todo if ex.id in stored]
    fresh = [ex for ex in todo if ex.id not in stored]
    for start in range(0, len(regrade), batch_size):
        batch = regrade[start:start + batch_size]
        store.append(_records(benchmark, batch, [stored[ex.id]["responses"] for ex in batch], grader, loose))
    if fresh:
        _sample_and_grade(benchmark, fresh, policy, grader, store, config, batch_size, loose)
    records = store.load()
    return {ex.id: records[ex.id] for ex in examples}


def _sample_and_grade(benchmark, examples, policy, grader, store, config, batch_size, loose) -> None:
    prompt_ids = policy.encode([ex.messages for ex in examples])
    fits = [len(ids) <= config.max_prompt_len for ids in prompt_ids]
    store.append({"id": ex.id, "complete": True,
                  "skipped": f"prompt of {len(ids)} tokens > max_prompt_len {config.max_prompt_len}"}
                 for ex, ids, ok in zip(examples, prompt_ids, fits) if not ok)
    pairs = [(ex, ids) for ex, ids, ok in zip(examples, prompt_ids, fits) if ok]
    per_call = max(1, batch_size // config.n)
    start, done = time.monotonic(), 0
    for number, batch in enumerate(length_sorted_batches(pairs, [len(ids) for _, ids in pairs], per_call)):
        texts = policy.sample([ids for _, ids in batch], config.replace(seed=config.seed + number))
        store.append(_records(benchmark, [ex for ex, _ in batch], texts, grader, loose))
        done += len(batch)
        log.info("%s: %d/%d examples sampled (n=%d) and graded, %.0f s", benchmark, done, len(pairs), config.n,
                 time.monotonic() - start)


def _records(benchmark: str, examples: Sequence[Example], responses: Sequence[Sequence[str]], grader: Grader,
             loose: bool) -> list[dict]:
    """One record per example from its n responses."""
    flat_examples = [ex for ex, texts in zip(examples, responses) for _ in texts]
    graded = iter(grader.grade(benchmark, flat_examples, [t for texts in responses for t in texts], loose=loose))
    records = []
    for ex, texts in zip(examples, responses):
        grades = [next(graded) for _ in texts]
        records.append({
            "id": ex.id,
            "responses": list(texts),
            "grades": [g.details for g in grades],
            "rewards": [g.reward if g.result is not None else None for g in grades],
            "complete": all(g.complete for g in grades),
        })
    return records
