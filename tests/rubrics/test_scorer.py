"""`RubricScorer.score_batch`: checks and judge calls together, input order, and the unscored policies."""

import dataclasses

import pytest
from ml_collections import ConfigDict

from herl_jax.rubrics import Check, JudgeConfig, Rubric, RubricItem, RubricScorer, ScorerConfig
from herl_jax.rubrics.instructions import instruction_rubric

from .openai_stub import OpenAIStub, Reply, truthful_answer

KEY_ENV = "SCORER_TEST_KEY"


def script(request, attempt):
    text = request["messages"][1]["content"]
    if "judge-down" in text:
        return Reply(status=503)
    if "judge-rambles" in text:
        return Reply(content="The response looks reasonable to me.")
    if "judge-hangs" in text:
        return Reply(content=truthful_answer(request), delay_s=1.5)
    return Reply(content=truthful_answer(request))


@pytest.fixture
def judge_config(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "local-key")
    with OpenAIStub(script) as stub:
        yield JudgeConfig(base_url=stub.base_url, model="m", api_key_env=KEY_ENV, backoff_base_s=0.01, timeout_s=5)


def mixed_rubric() -> Rubric:
    programmatic = instruction_rubric(["punctuation:no_comma", "muldimif:length_words"], [{}, {"max_words": 8}])
    judged = Rubric.from_criteria(
        [("MET gives a dose", 3.0), ("UNMET cites a source", 1.0), ("MET warns of overdose", -2.0)]
    )
    return Rubric(programmatic.items + judged.items)


def test_mixed_batch_in_input_order_with_hand_computed_scores(judge_config):
    rubric = mixed_rubric()
    responses = ["Take 500 mg every six hours.", "Take 500 mg, every six hours, with water and food please."]
    with RubricScorer(ScorerConfig(judge=judge_config)) as scorer:
        results = scorer.score_batch(["dose?"] * 2, responses, [rubric] * 2)
    # weights 1, 1, 3, 1, -2 (healthbench: / 6); judge: dose met, source unmet, overdose pitfall met
    assert [v.met for v in results[0].verdicts] == [True, True, True, False, True]
    assert results[0].score == pytest.approx((1 + 1 + 3 - 2) / 6)
    assert [v.met for v in results[1].verdicts] == [False, False, True, False, True]
    assert results[1].score == pytest.approx((3 - 2) / 6)
    assert [n for n, _ in results[1].unmet] == [1, 2, 4, 5]
    assert scorer.stats.responses == 2 and scorer.stats.judge.calls == 2 and scorer.stats.checks.checks == 4


def test_clamp_ignores_pitfalls(judge_config):
    config = ScorerConfig(judge=judge_config, negative_weights="clamp")
    with RubricScorer(config) as scorer:
        (result,) = scorer.score_batch(["dose?"], ["Take 500 mg every six hours."], [mixed_rubric()])
    assert result.score == pytest.approx((1 + 1 + 3) / 6)


@pytest.mark.parametrize(("policy", "score"), [("drop", None), ("zero", (1 + 1) / 6)])
def test_unscored_judge_items_follow_the_policy(judge_config, policy, score):
    with RubricScorer(ScorerConfig(judge=judge_config, unscored=policy)) as scorer:
        ok, down = scorer.score_batch(["q", "q"], ["Fine answer.", "judge-down"], [mixed_rubric()] * 2)
    assert ok.score == pytest.approx((1 + 1 + 3 - 2) / 6)
    assert down.score == (None if score is None else pytest.approx(score))
    assert [n for n, _ in down.unscored] == [3, 4, 5]
    assert all("http_503" in v.reason for v in down.verdicts[2:])
    assert scorer.stats.unscored_items == 3
    assert (scorer.stats.dropped_samples, scorer.stats.zeroed_samples) == ((1, 0) if policy == "drop" else (0, 1))


def test_take_stats_counts_zeroed_samples_judge_failures_by_kind_and_check_timeouts(judge_config):
    """Under `zero`, every sample with an unscored item is zeroed, and each cause is counted by its kind."""
    judge = dataclasses.replace(judge_config, timeout_s=0.5, max_retries=0)
    config = ScorerConfig(judge=judge, unscored="zero", check_time_limit_s=0.3)
    sentences = instruction_rubric(["length_constraints:number_sentences"],
                                   [{"num_sentences": 3, "relation": "at least"}])
    responses = ["Fine answer.", "judge-down", "judge-rambles", "judge-hangs",
                 "Hi there. " * 50_000, "One. Two. Three."]
    rubrics = [mixed_rubric()] * 4 + [sentences] * 2
    with RubricScorer(config) as scorer:
        results = scorer.score_batch(["q"] * 6, responses, rubrics)
        stats = scorer.take_stats()
        assert scorer.take_stats()["rubric/zeroed_samples"] == 0  # a new window
    assert [r.score is not None for r in results] == [True] * 6  # "zero" drops nothing
    assert stats["rubric/zeroed_samples"] == 4 and stats["rubric/dropped_samples"] == 0
    assert stats["rubric/judge/failures"] == 3
    assert {k.rsplit("/", 1)[1]: v for k, v in stats.items() if k.startswith("rubric/judge/failure_causes/")} == {
        "http_503": 1, "unparseable": 1, "timeout": 1}
    assert stats["rubric/check/timeouts"] == 1 and stats["rubric/responses"] == 6


def test_a_raising_checker_drops_only_its_sample():
    broken = Check("length_constraints:number_words", {"num_words": "many", "relation": "at least"})
    bad = Rubric((RubricItem("at least 'many' words", check=broken),))
    good = instruction_rubric(["punctuation:no_comma"], [{}])
    with RubricScorer() as scorer:
        results = scorer.score_batch(["p"] * 3, ["a b", "a b", "a, b"], [good, bad, good])
    assert [r.score for r in results] == [1.0, None, 0.0]
    assert scorer.stats.checks.errors == 1 and scorer.stats.dropped_samples == 1


def test_judged_items_without_a_judge_are_a_config_error():
    with RubricScorer() as scorer, pytest.raises(ValueError, match="no judge"):
        scorer.score_batch(["q"], ["a"], [Rubric.from_criteria([("is polite", 1.0)])])


def test_config_from_ml_collections_with_a_judge_sub_config():
    judge = {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"}
    config = ScorerConfig.from_config(ConfigDict({"unscored": "zero", "workers": 4, "judge": judge}))
    assert config.unscored == "zero" and config.workers == 4 and config.judge.model == "gpt-4o-mini"
    assert ScorerConfig().negative_weights == "healthbench" and ScorerConfig().unscored == "drop"
    with pytest.raises(ValueError):
        ScorerConfig.from_config({"unscored": "ignore"})
    with pytest.raises(ValueError, match="worker"):
        ScorerConfig.from_config({"worker": 2})
