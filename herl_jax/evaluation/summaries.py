"""From per-example records (collect.py, revision.py) to a benchmark's numbers.

Examples whose prompt was too long are counted in `skipped`; examples whose grading is incomplete
(a judge call failed for good) in `incomplete`. Neither enters a metric: nothing is scored by guess.
"""

from __future__ import annotations

from statistics import mean
from typing import Mapping, Sequence

import numpy as np

from herl_jax.evaluation import healthbench, writingbench
from herl_jax.evaluation.metrics import best_of_k, instruction_following_accuracy, pass_at_k

INSTRUCTION_FOLLOWING = ("ifeval", "ifbench")


def _split(records: Mapping[str, dict]) -> tuple[list[dict], dict]:
    """(graded records, counts of the others)."""
    graded = [r for r in records.values() if "skipped" not in r and r["complete"]]
    counts = {"n": len(graded), "skipped": sum("skipped" in r for r in records.values()),
              "incomplete": sum("skipped" not in r and not r["complete"] for r in records.values())}
    return graded, counts


def pass1(benchmark: str, records: Mapping[str, dict], bootstrap_samples: int = 1000) -> dict:
    """The benchmark's own metrics on the first (greedy) response of each example."""
    graded, counts = _split(records)
    if not graded:
        return counts
    grades = [r["grades"][0] for r in graded]
    if benchmark in INSTRUCTION_FOLLOWING:
        strict = instruction_following_accuracy([g["strict"] for g in grades])
        loose = instruction_following_accuracy([g["loose"] for g in grades])
        metrics = {"prompt_strict": strict["prompt"], "instruction_strict": strict["instruction"],
                   "prompt_loose": loose["prompt"], "instruction_loose": loose["instruction"],
                   "unscored_items": sum(g["unscored"] for g in grades)}
    elif benchmark == "healthbench":
        metrics = healthbench.summarize(grades, bootstrap_samples)
    else:
        metrics = writingbench.summarize(grades)
    return {**counts, **metrics}


def passk(records: Mapping[str, dict], ks: Sequence[int], threshold: float) -> dict:
    """Unbiased pass@k (success: reward >= threshold) and best-of-k reward, averaged over examples."""
    graded, counts = _split(records)
    if not graded:
        return counts
    n = min(len(r["rewards"]) for r in graded)
    ks = [k for k in ks if k <= n]
    rewards = [np.asarray(r["rewards"][:n], dtype=np.float64) for r in graded]
    return {
        **counts,
        "samples": n,
        "pass@k": {k: mean(pass_at_k(n, int((v >= threshold).sum()), k) for v in rewards) for k in ks},
        "best_of_k": {k: mean(best_of_k(v, k) for v in rewards) for k in ks},
    }


def revision(records: Mapping[str, dict], rounds: int, threshold: float) -> dict:
    """Per round r: the share of chains solved within r rounds and the best reward within r rounds,
    averaged per example, then over examples."""
    graded, counts = _split(records)
    if not graded:
        return counts
    solved, best = np.zeros(rounds), np.zeros(rounds)
    for record in graded:
        for chain in record["chains"]:
            rewards = np.asarray(chain["rewards"], dtype=np.float64)
            # a chain that stopped early keeps its last answer for the remaining rounds
            padded = np.concatenate([rewards, np.full(rounds - len(rewards), rewards[-1])])
            solved += np.maximum.accumulate(padded >= threshold) / len(record["chains"])
            best += np.maximum.accumulate(padded) / len(record["chains"])
    return {
        **counts,
        "rounds": rounds,
        "success": {r + 1: float(v) for r, v in enumerate(solved / len(graded))},
        "best_reward": {r + 1: float(v) for r, v in enumerate(best / len(graded))},
        "unscored_items": sum(r["unscored"] for r in graded),
    }
