"""Iterative guided revision end to end on a tiny random decoder with programmatic rubrics, and the
whole runner (Pass@1, pass@k, revision, report and plots) on it."""

import dataclasses
import json

import pytest

from herl_jax.buckets import round_up
from herl_jax.evaluation import summarize
from herl_jax.evaluation.config import default_config
from herl_jax.evaluation.data import BenchmarkItem
from herl_jax.evaluation.grade import Grader
from herl_jax.evaluation.pipeline import evaluate_policies
from herl_jax.evaluation.revision import RevisionConfig, revise
from herl_jax.evaluation.store import GradedRecords, ResultStore
from herl_jax.herl import default_config as herl_config
from herl_jax.herl import revise_prompt_ids
from herl_jax.rubrics.instructions import instruction_rubric, run_check
from herl_jax.sampling import SamplingConfig
from tests.evaluation.helpers import tiny_policy

ROUNDS, CHAINS = 3, 2


@dataclasses.dataclass(frozen=True)
class Feedback:
    satisfied: tuple
    unmet: tuple


class Recording:
    """Wraps a Policy and records every sampler call's prompt ids and config."""

    def __init__(self, policy):
        self.policy, self.calls = policy, []

    def __getattr__(self, name):
        return getattr(self.policy, name)

    def sample(self, prompt_ids, config):
        self.calls.append(([list(p) for p in prompt_ids], config))
        return self.policy.sample(prompt_ids, config)


def _examples():
    rubric = instruction_rubric(["keywords:existence", "punctuation:no_comma"], [{"keywords": ["apple"]}, {}])
    return [BenchmarkItem(id=f"q{i}", messages=({"role": "user", "content": text},), prompt=text, rubric=rubric)
            for i, text in enumerate(["say apple", "say banana , stone", "green river", "quiet light ."])]


def _independent_feedback(example, response):
    """(reward, feedback) from the checkers run directly, numbered as in the rubric."""
    met = [run_check(item.check, example.prompt, response) for item in example.rubric.items]
    numbered = list(enumerate((item.text for item in example.rubric.items), start=1))
    return sum(met) / len(met), Feedback(tuple(x for x, m in zip(numbered, met) if m),
                                         tuple(x for x, m in zip(numbered, met) if not m))


def test_revision_rounds_use_the_training_revise_prompt_with_unmet_items(tmp_path):
    examples = _examples()
    policy = Recording(tiny_policy(seed=3))
    prompt_cfg = herl_config().prompt
    config = RevisionConfig(rounds=ROUNDS, chains=CHAINS, success_threshold=1.0, max_prompt_len=1024, prompt=prompt_cfg)
    # the shapes of the runner test below, so the two share compiled sampler programs
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=4, max_prompt_len=512, prompt_bucket=512, seed=0)
    with Grader(judge=None) as grader:
        records = revise("tiny", examples, policy, grader, ResultStore(tmp_path / "r.jsonl"), sampling, config,
                         batch_size=16)

    tokenizer = policy.tokenizer
    first, *later = policy.calls
    assert first[1].n == CHAINS and sorted(first[0]) == sorted(policy.encode([ex.messages for ex in examples]))
    assert all(cfg.n == 1 for _, cfg in later) and later, "no revision round ran"
    for prompts, cfg in policy.calls:  # each call's caches sized for its own prompts, not for max_prompt_len 1024
        longest = max(map(len, prompts))
        assert longest <= cfg.max_prompt_len <= round_up(1.5 * longest, cfg.prompt_bucket)

    expected_round_prompts = {r: [] for r in range(2, ROUNDS + 1)}
    for example in examples:
        chains = records[example.id]["chains"]
        assert len(chains) == CHAINS
        for chain in chains:
            rewards, responses = chain["rewards"], chain["responses"]
            independent = [_independent_feedback(example, r) for r in responses]
            assert rewards == pytest.approx([reward for reward, _ in independent])
            # a chain stops at its first success and otherwise runs every round
            assert all(r < 1.0 for r in rewards[:-1])
            assert chain["stopped"] == ("success" if rewards[-1] == 1.0 else "rounds")
            assert len(rewards) <= ROUNDS and (chain["stopped"] == "success" or len(rewards) == ROUNDS)
            for r in range(2, len(responses) + 1):  # round r revises the answer of round r - 1
                _, feedback = independent[r - 2]
                expected_round_prompts[r].append(
                    revise_prompt_ids(tokenizer, example.prompt, feedback, responses[r - 2], prompt_cfg))
    stops = {c["stopped"] for r in records.values() for c in r["chains"]}
    assert stops == {"success", "rounds"}  # both endings occur with this seed
    assert [sorted(ids) for ids, _ in later] == [sorted(expected_round_prompts[r]) for r in range(2, 2 + len(later))]
    # the revise prompt tells the unmet item: "apple" is in the keyword item's description
    assert any("apple" in tokenizer.decode(ids) for ids, _ in later for ids in ids)

    curve = summarize.revision(GradedRecords.of(records), ROUNDS, 1.0)
    success = [curve["success"][r] for r in range(1, ROUNDS + 1)]
    assert success == sorted(success)
    solved_within = lambda r: sum(  # noqa: E731
        any(x == 1.0 for x in c["rewards"][:r]) / CHAINS for rec in records.values() for c in rec["chains"])
    assert success == pytest.approx([solved_within(r) / len(examples) for r in range(1, ROUNDS + 1)])


def test_runner_end_to_end_on_a_tiny_model_writes_table_json_and_plots(tmp_path):
    c = default_config()
    c.batch_size = 4
    c.greedy.update(max_new_tokens=4, prompt_bucket=512, max_prompt_len=512)
    c.sampling.update(max_new_tokens=4, prompt_bucket=512, max_prompt_len=512)
    c.passk.update(n=2, ks=(1, 2))
    c.revision.update(rounds=2, max_prompt_len=1024)
    policy = tiny_policy()
    evaluate_policies(c, [("tiny", "unused", policy)], ["ifeval"], tmp_path, limit=2)

    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert summary["pass@1"]["n"] == 2 and summary["pass@k"]["samples"] == 2
    assert set(summary["revision"]["success"]) == {"1", "2"} and set(summary["revision"]["pass@k"]) == {"1", "2"}
    records = ResultStore(tmp_path / "tiny" / "ifeval" / "passk.jsonl").load()
    assert all(len(r["responses"]) == 2 for r in records.values())

    report = (tmp_path / "results.md").read_text()
    assert "| Checkpoint | IFEval |" in report and "| tiny |" in report
    assert "Guided revision vs pass@k: tiny, IFEval" in report
    assert "tiny" in json.loads((tmp_path / "results.json").read_text())
    for name in ("passk.png", "revision.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
