"""Stage 5, summarize: a benchmark's stored records (`GradedRecords`) -> its numbers.

Items whose prompt was too long are counted in `skipped`; items whose grading is incomplete (a judge
call failed for good) in `incomplete`. Neither enters a metric: nothing is scored by guess.

The metrics are pure functions of per-item outcomes:
- IFEval / IFBench accuracy, as google-research's and AllenAI's `evaluation_lib` define it:
  prompt level = share of prompts whose instructions are all followed; instruction level = share of
  all instructions followed. Strict checks the response; loose also accepts eight trimmed variants.
- pass@k, with the unbiased estimator of Chen et al. (2021), and its analogue for a continuous reward,
  the expected best of k samples; both from n >= k samples drawn without replacement.
- HealthBench: the mean of per-response scores clipped to [0, 1] and its bootstrap standard error, as
  in OpenAI's simple-evals, overall and per axis.
- WritingBench: the mean of all criterion scores; a domain's score is the mean over its queries of each
  query's mean criterion score (its `calculate_scores.py`).
- MulDimIF: as IFEval (prompt level = every graded constraint met: the release's `total_acc`), over the
  constraints our parser reads; `unparsed_constraints` counts the others.
- LLMEval-Med: the share of responses scored >= 4 of 5 (its Overall Performance), the mean score, per category.
- MATH-500, GPQA, MMLU-Pro: accuracy; `no_answer` counts responses with no boxed answer / no stated letter.
"""

from __future__ import annotations

from collections import defaultdict
from math import comb
from statistics import mean
from typing import Mapping, Sequence

import numpy as np

from herl_jax.evaluation.store import GradedRecords

INSTRUCTION_FOLLOWING = ("ifeval", "ifbench", "heldout", "muldimif")  # graded by checkers, strict and loose
ANSWERED = ("math500", "gpqa", "mmlu_pro")  # graded by the final answer: accuracy


def pass1(benchmark: str, graded: GradedRecords, bootstrap_samples: int = 1000) -> dict:
    """The benchmark's own metrics on the first (greedy) response of each item."""
    if not graded.records:
        return graded.counts()
    grades = [r["grades"][0] for r in graded.records]
    if benchmark in INSTRUCTION_FOLLOWING:
        strict = instruction_following_accuracy([g["strict"] for g in grades])
        loose = instruction_following_accuracy([g["loose"] for g in grades])
        metrics = {"prompt_strict": strict["prompt"], "instruction_strict": strict["instruction"],
                   "prompt_loose": loose["prompt"], "instruction_loose": loose["instruction"],
                   "unscored_items": sum(g["unscored"] for g in grades)}
        if benchmark == "muldimif":
            metrics["unparsed_constraints"] = sum(g["unparsed"] for g in grades)
    elif benchmark == "healthbench":
        metrics = healthbench(grades, bootstrap_samples)
    elif benchmark == "llmeval_med":
        metrics = llmeval_med(grades)
    elif benchmark in ANSWERED:
        metrics = {"accuracy": mean(bool(g["correct"]) for g in grades),
                   "no_answer": sum(g.get("letter", g.get("answer")) is None for g in grades)}
    else:
        metrics = writingbench(grades)
    return {**graded.counts(), **metrics}


def passk(graded: GradedRecords, ks: Sequence[int], threshold: float) -> dict:
    """Unbiased pass@k (success: reward >= threshold) and best-of-k reward, averaged over items."""
    if not graded.records:
        return graded.counts()
    n = min(len(r["rewards"]) for r in graded.records)
    ks = [k for k in ks if k <= n]
    rewards = [np.asarray(r["rewards"][:n], dtype=np.float64) for r in graded.records]
    return {
        **graded.counts(),
        "samples": n,
        "pass@k": {k: mean(pass_at_k(n, int((v >= threshold).sum()), k) for v in rewards) for k in ks},
        "best_of_k": {k: mean(best_of_k(v, k) for v in rewards) for k in ks},
    }


def revision(graded: GradedRecords, rounds: int, threshold: float) -> dict:
    """Per round r: the share of chains solved within r rounds and the best reward within r rounds,
    averaged per item, then over items."""
    if not graded.records:
        return graded.counts()
    solved, best = np.zeros(rounds), np.zeros(rounds)
    for record in graded.records:
        for chain in record["chains"]:
            rewards = np.asarray(chain["rewards"], dtype=np.float64)
            # a chain that stopped early keeps its last answer for the remaining rounds
            padded = np.concatenate([rewards, np.full(rounds - len(rewards), rewards[-1])])
            solved += np.maximum.accumulate(padded >= threshold) / len(record["chains"])
            best += np.maximum.accumulate(padded) / len(record["chains"])
    return {
        **graded.counts(),
        "rounds": rounds,
        "success": {r + 1: float(v) for r, v in enumerate(solved / len(graded.records))},
        "best_reward": {r + 1: float(v) for r, v in enumerate(best / len(graded.records))},
        "unscored_items": sum(r["unscored"] for r in graded.records),
    }


def healthbench(grades: Sequence[Mapping], bootstrap_samples: int = 1000, seed: int = 0) -> dict:
    """Clipped mean, bootstrap standard error and count, overall and per axis."""
    def stats(values):
        return {"score": clipped_mean(values), "stderr": bootstrap_stderr(values, bootstrap_samples, seed),
                "n": len(values)}

    axes = defaultdict(list)
    for grade in grades:
        for axis, value in grade["axes"].items():
            axes[axis].append(value)
    return {**stats([g["score"] for g in grades]), "axes": {a: stats(v) for a, v in sorted(axes.items())}}


def writingbench(grades: Sequence[Mapping]) -> dict:
    """Overall mean criterion score and per-domain means of per-query means (1-10 scale)."""
    domains = {"domain1": defaultdict(list), "domain2": defaultdict(list)}
    for grade in grades:
        for level, by_domain in domains.items():
            by_domain[grade[level]].append(mean(grade["scores"]))
    return {
        "score": mean(s for grade in grades for s in grade["scores"]),
        "n": len(grades),
        **{level: {d: mean(v) for d, v in sorted(by_domain.items())} for level, by_domain in domains.items()},
    }


def llmeval_med(grades: Sequence[Mapping]) -> dict:
    """The share of usable responses (score >= 4: the release's Overall Performance), the mean score (1-5), and
    each category's usable share."""
    from herl_jax.evaluation.llmeval_med import USABLE

    by_category = defaultdict(list)
    for grade in grades:
        by_category[grade["category"]].append(grade["score"] >= USABLE)
    return {"usable": mean(g["score"] >= USABLE for g in grades), "mean_score": mean(g["score"] for g in grades),
            "categories": {c: {"usable": mean(v), "n": len(v)} for c, v in sorted(by_category.items())}}


# --- metrics -----------------------------------------------------------------------------------------------

def instruction_following_accuracy(follow_lists: Sequence[Sequence[bool]]) -> dict[str, float]:
    """{"prompt": ..., "instruction": ...} accuracy from one list of verdicts per prompt."""
    if not follow_lists:
        raise ValueError("no prompts to score")
    followed = sum(sum(map(bool, verdicts)) for verdicts in follow_lists)
    total = sum(len(verdicts) for verdicts in follow_lists)
    return {
        "prompt": sum(all(verdicts) for verdicts in follow_lists) / len(follow_lists),
        "instruction": followed / total,
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples succeeds) from c successes among n samples: 1 - C(n-c, k) / C(n, k).

    Computed as a product (Chen et al. 2021), stable for large n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def best_of_k(values: Sequence[float], k: int) -> float:
    """E[max of k samples drawn without replacement from `values`]: the unbiased best-of-k reward.

    With values sorted ascending, v_(i) is the maximum of C(i-1, k-1) of the C(n, k) subsets.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"best-of-k needs 1 <= k <= n, got n={n}, k={k}")
    weights = np.array([comb(i - 1, k - 1) for i in range(1, n + 1)], dtype=np.float64) / comb(n, k)
    return float(weights @ v)


def clipped_mean(values: Sequence[float]) -> float:
    return float(np.clip(np.mean(values), 0.0, 1.0))


def bootstrap_stderr(values: Sequence[float], samples: int = 1000, seed: int = 0) -> float:
    """Standard deviation of the clipped mean over `samples` bootstrap resamples (simple-evals)."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(samples, len(v)))].mean(axis=1)
    return float(np.std(np.clip(means, 0.0, 1.0)))
