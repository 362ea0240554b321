"""Metric functions against independent references: brute-force enumeration for pass@k and best-of-k,
and the official IFEval / IFBench evaluation for accuracy on fixed responses."""

import itertools
import json
import string
import sys
import types

import numpy as np
import pytest

from herl_jax.evaluation.data import load_benchmark, tasks_dir
from herl_jax.evaluation.grade import Grader
from herl_jax.evaluation.summarize import (
    best_of_k,
    bootstrap_stderr,
    clipped_mean,
    instruction_following_accuracy,
    pass_at_k,
)
from herl_jax.rubrics.instructions import import_skipping_package_init
from tests.rubrics.ifeval_responses import PLAIN, cooperative


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_the_share_of_k_subsets_holding_a_success(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)


def test_pass_at_k_is_stable_for_large_n_and_refuses_bad_counts():
    assert pass_at_k(200, 1, 1) == pytest.approx(1 / 200)
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(200, 101, 100) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_best_of_k_equals_the_mean_maximum_over_k_subsets():
    values = np.random.default_rng(0).uniform(-0.3, 1.0, size=7).round(2)
    values[3] = values[5]  # ties
    for k in range(1, 8):
        subsets = list(itertools.combinations(values, k))
        assert best_of_k(values, k) == pytest.approx(np.mean([max(s) for s in subsets]), abs=1e-12)


def test_clipped_mean_and_bootstrap_stderr():
    assert clipped_mean([1.2, 1.4]) == 1.0 and clipped_mean([-0.5, 0.1]) == 0.0
    values = np.random.default_rng(1).normal(0.5, 0.1, size=4000)
    # the bootstrap estimate of the standard error of a mean approaches std / sqrt(n)
    assert bootstrap_stderr(values, samples=500) == pytest.approx(values.std() / np.sqrt(len(values)), rel=0.1)
    assert bootstrap_stderr([3.0, 3.0]) == 0.0  # every resample's mean clips to 1


def test_instruction_following_accuracy_on_a_hand_count():
    acc = instruction_following_accuracy([[True, True], [True, False], [False]])
    assert acc == {"prompt": 1 / 3, "instruction": 3 / 5}


# --- against the official evaluation, on the same fixed responses -------------------------------------------

def _official_compute_metrics(task_module: str, task_class: str, follow_lists):
    """The official metric formula (llm-eval-framework's task `_compute_metrics`) on verdict lists."""
    module = import_skipping_package_init(f"eval_framework.tasks.{task_module}", "eval_framework.tasks")
    outputs = [types.SimpleNamespace(follow_instruction_list=list(f)) for f in follow_lists]
    metrics = getattr(module, task_class)(num_threads=1)._compute_metrics(outputs)
    return {"prompt": metrics["prompt_accuracy"], "instruction": metrics["instruction_accuracy"]}


def _ours(benchmark, examples, responses):
    with Grader(judge=None, workers=2, check_time_limit_s=30.0) as grader:
        graded = grader.grade(benchmark, examples, responses, loose=True)
    return {mode: instruction_following_accuracy([g.details[mode] for g in graded]) for mode in ("strict", "loose")}


def _rows(path):
    return [json.loads(line) for line in (tasks_dir() / path).read_text().split("\n") if line.strip()]


def test_ifeval_accuracy_equals_the_official_evaluation():
    official = import_skipping_package_init("eval_framework.tasks.ifeval.evaluation", "eval_framework.tasks")
    # the official checker draws a fresh random letter for a letter that is not a-z: not comparable
    rows = [r for r in _rows("ifeval/data/input_data.jsonl")
            if not any(kw.get("letter", "a") not in string.ascii_letters for kw in r["kwargs"])][:80]
    by_key = {str(e.id): e for e in load_benchmark("ifeval")}
    examples = [by_key[str(r["key"])] for r in rows]
    response_sets = {
        "followed": [cooperative(r) for r in rows],
        "wrapped": [f"Sure! Here it is:\n{cooperative(r)}\nHope this helps!" for r in rows],
        "plain": [PLAIN if i % 5 else "" for i in range(len(rows))],  # some empty responses too
    }
    for name, responses in response_sets.items():
        ours = _ours("ifeval", examples, responses)
        for mode, evaluate in (("strict", official.test_instruction_following_strict),
                               ("loose", official.test_instruction_following_loose)):
            follow = [evaluate(official.InputExample(r["key"], r["instruction_id_list"], r["prompt"], r["kwargs"]),
                               {r["prompt"]: resp}).follow_instruction_list for r, resp in zip(rows, responses)]
            assert ours[mode] == _official_compute_metrics("ifeval_task", "IFEvalTask", follow), (name, mode)
    # not vacuous: the sets differ, and strict and loose differ on the wrapped responses
    assert 0 < _ours("ifeval", examples, response_sets["followed"])["strict"]["prompt"] < 1
    wrapped = _ours("ifeval", examples, response_sets["wrapped"])
    assert wrapped["strict"]["prompt"] < wrapped["loose"]["prompt"]


def test_ifbench_accuracy_equals_allenai_evaluation_logic():
    """Reference: if-verifiable's `evaluate_instructions` (AllenAI's evaluation_lib logic: kwargs without
    None, strict and eight loose variants) over AllenAI's checkers. `words:start_verb` needs NLTK's POS
    tagger, which no package ships: both sides would fail, so its prompts are left out."""
    common = import_skipping_package_init("if_verifiable.common", "if_verifiable")
    registry = sys.modules["if_verifiable.ifbench.instructions_registry"].INSTRUCTION_DICT
    rows = [r for r in _rows("ifbench/data/IFBench_test.jsonl") if "words:start_verb" not in r["instruction_id_list"]]
    rows = rows[::4][:60]
    by_key = {e.id: e for e in load_benchmark("ifbench")}
    examples = [by_key[str(r["key"])] for r in rows]
    shapes = [
        PLAIN,
        PLAIN.lower().replace(",", ""),
        "* first point\n* second point\n* third point",
        f"Title\n{PLAIN.upper()}\n**Bold ending.**",
        "Yes. No. Maybe so. " * 12,
    ]
    responses = [shapes[i % len(shapes)] for i in range(len(rows))]
    results = [common.evaluate_instructions(resp, r["instruction_id_list"], r["kwargs"], r["prompt"], registry)[0]
               for r, resp in zip(rows, responses)]
    ours = _ours("ifbench", examples, responses)
    for mode in ("strict", "loose"):
        follow = [[getattr(x, f"{mode}_pass") for x in result] for result in results]
        assert ours[mode] == _official_compute_metrics("ifbench_task", "IFBenchTask", follow), mode
    assert 0 < ours["loose"]["instruction"] and ours["strict"]["prompt"] < 1  # not vacuous
