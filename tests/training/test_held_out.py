"""Held-out scoring (`held_out.score_held_out`, behind `Collector.held_out` and the baseline CLI) driven by a
scripted sampler and scorer: which replies are scored, dropped and skipped, greedy sampling, and the
`validation/*` means re-derived here by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest

from herl_jax.config import base_config, validate
from herl_jax.data import Example
from herl_jax.models import load_tokenizer
from herl_jax.rubrics import ItemVerdict, Rubric, RubricItem, RubricResult
from herl_jax.sampling import SampleOutput
from herl_jax.step.held_out import score_held_out
from herl_jax.step.rl_step import Collector, StepSettings

RUBRIC = Rubric((RubricItem("item 0"), RubricItem("item 1")))
# example id -> (reward, or None for a dropped reply; items met); "e" is never sampled: its prompt is too long
SCRIPT = {"a": (1.0, 2), "b": (0.5, 1), "c": (None, 0), "d": (0.0, 0), "e": (1.0, 2)}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m-instruct")


def _example(key: str) -> Example:
    text = f"held-{key}: name a river." + (" Really long." * 200 if key == "e" else "")
    return Example(id=key, messages=({"role": "user", "content": text},), instruction=text, rubric=RUBRIC,
                   template="instruction")


class GreedySampler:
    """Replies "reply KEY" to each prompt; records every call's sampling config."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []

    def __call__(self, policy, prompts, config, pad_id=0) -> SampleOutput:
        self.calls.append(config)
        keys = [re.search(r"held-(\w)", self.tokenizer.decode(p)).group(1) for p in prompts]
        ids = [self.tokenizer.encode(f"reply {key}", add_special_tokens=False) for key in keys]
        width = max(len(i) for i in ids)
        tokens = np.zeros((len(ids), width), np.int32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)] = row
        lengths = np.array([len(i) for i in ids], np.int32)
        return SampleOutput(tokens, np.zeros(tokens.shape, np.float32), np.arange(width) < lengths[:, None],
                            lengths, ("stop",) * len(ids), np.arange(len(ids), dtype=np.int32))


class ScriptedScorer:
    def score_batch(self, prompts, texts, rubrics):
        results = []
        for text in texts:
            reward, met = SCRIPT[text.split()[1]]
            verdicts = tuple(ItemVerdict(None if reward is None else j < met) for j in range(2))
            results.append(RubricResult(RUBRIC, verdicts, reward))
        return results


class Policy:  # what held-out scoring reads of a policy: its end-of-turn ids
    class cfg:
        eos_token_ids = ()


def _collector(tokenizer):
    c = base_config()
    c.rollout.update(temperature=0.9, max_new_tokens=16, max_prompt_len=256, prompt_bucket=64)
    sampler = GreedySampler(tokenizer)
    return Collector(StepSettings.from_run(validate(c)), tokenizer, ScriptedScorer(), 0, sampler), sampler


def test_greedy_replies_to_the_prompts_that_fit_scored_by_the_rubric_scorer(tokenizer):
    collector, sampler = _collector(tokenizer)
    held = score_held_out(sampler, Policy(), tokenizer, collector.scorer, [_example(k) for k in SCRIPT],
                          collector.settings.rollout, 0)
    assert [example.id for example, _ in held.replies] == ["a", "b", "c", "d"]
    assert all(reply.text == f"reply {example.id}" for example, reply in held.replies)
    assert held.skipped_long == 1
    assert (held.rewards, held.dropped) == ([1.0, 0.5, 0.0], 1)
    assert held.successes(0.5) == [1.0, 1.0, 0.0]
    (call,) = sampler.calls
    assert (call.n, call.temperature, call.max_new_tokens) == (1, 0.0, 16)  # greedy, the rollout's length


def test_validation_metrics_are_the_means_over_the_scored_replies(tokenizer):
    collector, _ = _collector(tokenizer)
    metrics = collector.held_out(Policy(), [_example(k) for k in SCRIPT], success_threshold=1.0)
    assert metrics == {"validation/reward_mean": pytest.approx((1.0 + 0.5 + 0.0) / 3),
                       "validation/success_rate": pytest.approx(1 / 3), "validation/dropped": 1.0}


def test_only_dropped_replies_report_just_the_dropped_count(tokenizer):
    collector, _ = _collector(tokenizer)
    assert collector.held_out(Policy(), [_example("c")], 1.0) == {"validation/dropped": 1.0}
    assert collector.held_out(Policy(), [_example("e")], 1.0) == {}  # nothing sampled
