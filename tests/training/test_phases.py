"""The step's host phases driven end to end (`rl_step.Collector`) by a scripted sampler and a scripted scorer:
exact counts, and exact bonus, gain and advantage values re-derived here in float64 from docs/algorithm.md §2 for
hand-built groups (a failed revision, a dropped sample and a dropped revision, a group left with one member, a
solved group, a revise prompt too long, a prompt too long)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from herl_jax.config import base_config, validate
from herl_jax.data import Example
from herl_jax.models import load_tokenizer
from herl_jax.rubrics import ItemVerdict, Rubric, RubricItem, RubricResult
from herl_jax.sampling import SampleOutput
from herl_jax.step.rl_step import Collector, StepSettings, step_metrics

ALPHA, N, EPS = 0.3, 4, 1e-6
RUBRIC = Rubric(tuple(RubricItem(f"item {j}") for j in range(3)))
LONG_DRAFT = " ".join(["padding"] * 300)

# task -> each rollout's (score or None for dropped, satisfied items), in sampling order
ROLLOUTS = {
    "A": [(0.8, 2), (0.2, 0), (0.6, 1), (0.2, 0)],  # the best (row 0) is revised, and its revision fails
    "B": [(0.5, 1), (None, 0), (0.5, 2), (0.25, 1)],  # a dropped sample; two tied candidates
    "C": [(None, 0), (None, 0), (None, 0), (0.3, 1)],  # one scored member: no group
    "D": [(1.0, 3)] * 4,  # solved: no revision; every member equal (zero variance)
    "E": [(0.1, 1), (0.0, 0), (0.0, 0), (0.0, 0)],  # the best draft is too long to revise
    "F": [(0.5, 1)] * 4,  # never sampled: the prompt is too long
}
# (task, rollout row revised) -> the revision's score (None: dropped)
REVISIONS = {("A", 0): 0.0, ("B", 0): None, ("B", 2): 1.0}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m-instruct")


def _example(task: str) -> Example:
    text = f"task-{task}: write a short note." + (" Really long." * 200 if task == "F" else "")
    return Example(id=task, messages=({"role": "user", "content": text},), instruction=text, rubric=RUBRIC,
                   template="instruction")


def _text(task: str, row: int) -> str:
    score, _ = ROLLOUTS[task][row]
    return f"draft {task} row{row} score {score}" + (" " + LONG_DRAFT if (task, row) == ("E", 0) else "")


class ScriptedSampler:
    """A sampler whose completions are the scripts' texts; records every call's sampling config."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []

    def __call__(self, policy, prompts, config, pad_id=0) -> SampleOutput:
        self.calls.append(config)
        texts = []
        for ids in prompts:
            prompt = self.tokenizer.decode(ids)
            task = re.search(r"task-(\w)", prompt).group(1)
            if config.n > 1:
                texts += [_text(task, row) for row in range(config.n)]
            else:  # a revision: its draft names the row it revises
                row = int(re.search(rf"draft {task} row(\d)", prompt).group(1))
                texts.append(f"revision {task} row{row} score {REVISIONS[(task, row)]}")
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        width = config.max_new_tokens
        assert max(len(i) for i in ids) <= width
        tokens = np.full((len(ids), width), pad_id, np.int32)
        logprobs = np.zeros((len(ids), width), np.float32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)] = row
            logprobs[r, : len(row)] = -0.5
        lengths = np.array([len(i) for i in ids], np.int32)
        return SampleOutput(tokens, logprobs, np.arange(width) < lengths[:, None], lengths, ("stop",) * len(ids),
                            np.repeat(np.arange(len(prompts), dtype=np.int32), config.n))


class ScriptedScorer:
    """Scores a text by the score it states; satisfied items from the rollout script. Records what it was
    asked to score against."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []

    def score_batch(self, prompts, texts, rubrics):
        results = []
        for prompt, text in zip(prompts, texts):
            self.asked.append((prompt, text))
            task, row, stated = re.match(r"\w+ (\w) row(\d) score (\S+)", text).groups()
            score = None if stated == "None" else float(stated)
            met = ROLLOUTS[task][int(row)][1] if text.startswith("draft") else 0
            verdicts = tuple(ItemVerdict(None if score is None else j < met) for j in range(3))
            results.append(RubricResult(RUBRIC, verdicts, score))
        return results


class Policy:  # what the collector reads of a policy: its end-of-turn ids
    class cfg:
        eos_token_ids = ()


def _run(tokenizer, keep_groups=False, **herl):
    c = base_config()
    c.rollout.update(n=N, max_new_tokens=400, max_prompt_len=256, prompt_bucket=64)
    c.revision.update(max_new_tokens=32, max_prompt_len=480, prompt_bucket=64)
    c.herl.update(alpha=ALPHA, **herl)
    c.trainer.update(prompts_per_step=6, score_overlap_chunks=2)
    group_size = N + (herl.get("group_mode", "append") == "append")
    c.train.ppo.update(mini_batch_size=6 * group_size, micro_batch_size=6)
    settings = StepSettings.from_run(validate(c))
    sampler, scorer = ScriptedSampler(tokenizer), ScriptedScorer()
    collector = Collector(settings, tokenizer, scorer, pad_id=0, sampler=sampler)
    experience = collector.collect(Policy(), [_example(t) for t in "ABCDEF"], step=3, keep_groups=keep_groups)
    return experience, sampler, scorer


def _advantages(rewards) -> np.ndarray:
    """Eq. 10 re-derived: (r − mean) / (unbiased std + ε)."""
    r = np.asarray(rewards, np.float64)
    return (r - r.sum() / r.size) / (np.sqrt(((r - r.mean()) ** 2).sum() / (r.size - 1)) + EPS)


def test_counts_of_every_case(tokenizer):
    experience, _, _ = _run(tokenizer)
    c = experience.counts
    assert (c.prompts, c.skipped_long_prompts) == (6, 1)  # F
    assert c.dropped_samples == 1 + 3  # B's row 1, C's rows 0-2
    assert c.skipped_groups == 1  # C
    assert (c.revised_groups, c.revisions, c.dropped_revisions) == (2, 3, 1)  # A; B twice, once dropped
    assert c.long_revise_prompts == 1  # E's best draft
    assert (c.zero_variance_groups, c.fallback_groups) == (1, 0)  # D
    assert experience.group_max == (0.8, 0.5, 1.0, 0.1)  # A, B, D, E
    assert experience.rewards == (0.8, 0.2, 0.6, 0.2, 0.5, 0.5, 0.25, 1.0, 1.0, 1.0, 1.0, 0.1, 0.0, 0.0, 0.0)


def test_bonus_gain_and_advantages(tokenizer):
    experience, _, _ = _run(tokenizer)
    assert experience.revision_gain == pytest.approx((0.0 - 0.8, 1.0 - 0.5))
    assert experience.revision_best == pytest.approx((0.0, 1.0))  # A's and B's revisions that joined
    metrics = step_metrics(experience, 1.0, None, {}, 0.0)
    assert metrics["revision/success_rate"] == 0.5  # B's revision met its whole rubric, A's did not
    assert metrics["revision/improved"] == 0.5  # B's beat its best rollout (1.0 > 0.5), A's did not
    assert metrics["revision/rate"] == pytest.approx(2 / 4)  # A and B of the four assembled groups
    assert experience.bonus == pytest.approx((ALPHA * (0.0 - 0.8), ALPHA * (1.0 - 0.5)))
    groups = {  # final members' rewards: bonus on the candidates (Eq. 8), τ̃* appended
        "A": [0.8 + ALPHA * (0.0 - 0.8), 0.2, 0.6, 0.2, 0.0],
        "B": [0.5, 0.5 + ALPHA * (1.0 - 0.5), 0.25, 1.0],  # B's candidates: rows 0 and 2 of the scored rows 0, 2, 3
        "D": [1.0] * 4,
        "E": [0.1, 0.0, 0.0, 0.0],
    }
    records = list(experience.records)
    assert len(records) == sum(len(g) for g in groups.values())
    for task, rewards in groups.items():
        members, records = records[: len(rewards)], records[len(rewards):]
        np.testing.assert_allclose([m.reward for m in members], rewards, rtol=0, atol=1e-12)
        np.testing.assert_allclose([m.advantage for m in members], _advantages(rewards), rtol=0, atol=1e-9)
        revised = task in ("A", "B")  # τ̃* is the last member
        assert [m.is_revision for m in members] == [False] * (len(rewards) - revised) + [True] * revised


def test_revision_is_trained_under_its_revise_prompt_and_scored_against_the_original(tokenizer):
    experience, sampler, scorer = _run(tokenizer)
    revision = experience.records[4]  # A's appended member
    assert revision.is_revision
    assert "draft A row0" in tokenizer.decode(revision.context_ids)  # (q, H): the draft it revises
    assert tokenizer.decode(revision.response_ids) == "revision A row0 score 0.0"
    revised = [(p, t) for p, t in scorer.asked if t.startswith("revision")]
    assert len(revised) == 3
    assert all(p.startswith(f"task-{t.split()[1]}:") for p, t in revised)  # the ORIGINAL prompt (Eq. 6)
    rollout_calls = [c for c in sampler.calls if c.n == N]
    revision_calls = [c for c in sampler.calls if c.n == 1]
    assert len(rollout_calls) == 2 and len(revision_calls) == 2  # score_overlap_chunks=2: two pieces each
    assert rollout_calls[0].seed != revision_calls[0].seed


def test_failed_revision_falls_back_to_the_best_original_before_the_bonus(tokenizer):
    """Public code (require_improvement): A's revision (0.0) loses to the best original, row 0 (0.8); the
    bonus lowers row 0 to 0.56, below row 2 (0.6), yet the copy is row 0's, carrying its post-bonus reward."""
    experience, _, _ = _run(tokenizer, require_improvement=True)
    assert experience.counts.fallback_groups == 1
    a = experience.records[:5]
    assert not a[4].is_revision
    assert a[4].response_ids == a[0].response_ids
    rewards = [0.8 + ALPHA * (0.0 - 0.8), 0.2, 0.6, 0.2, 0.8 + ALPHA * (0.0 - 0.8)]
    np.testing.assert_allclose([m.reward for m in a], rewards, atol=1e-12)
    np.testing.assert_allclose([m.advantage for m in a], _advantages(rewards), atol=1e-9)
