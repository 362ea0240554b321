"""IFBench: every instruction type runs offline; hand-written cases for the NLTK-backed ones."""

import pytest

from herl_jax.rubrics.instructions import REGISTRY, instruction_rubric, run_check
from herl_jax.rubrics.pool import CheckJob
from herl_jax.rubrics.types import Check

PLAIN = "This is a plain response. It has two sentences."


def test_all_300_prompts_score_offline_except_the_pos_tagger_checker(ifbench_rows, pool):
    assert len(ifbench_rows) == 300
    jobs, kinds = [], []
    for row in ifbench_rows:
        for item in instruction_rubric(row["instruction_id_list"], row["kwargs"]).items:
            jobs.append(CheckJob(item.check, row["prompt"], PLAIN))
            kinds.append(item.check.instruction_id)
    assert len(set(kinds)) == 58 and set(kinds) <= REGISTRY.keys()
    verdicts = pool.run(jobs)
    unscored = {kind for kind, v in zip(kinds, verdicts) if not v.scored}
    # No PyPI package ships NLTK's averaged_perceptron_tagger_eng: that checker is unscored, not guessed.
    assert unscored == {"words:start_verb"}
    reasons = {v.reason for kind, v in zip(kinds, verdicts) if kind == "words:start_verb"}
    assert all(r.startswith("LookupError") and "averaged_perceptron_tagger_eng" in r for r in reasons)


def test_stop_word_ratio_uses_the_offline_english_stop_list():
    # "the cat is on the mat": the, is, on, the are stop words -> 4 of 6 words = 66.7 %
    text = "The cat is on the mat"
    assert run_check(Check("ratio:stop_words", {"percentage": 70}), "p", text) is True
    assert run_check(Check("ratio:stop_words", {"percentage": 60}), "p", text) is False


def test_keyword_at_a_sentence_position_uses_word_tokenization():
    check = Check("words:keywords_specific_position", {"keyword": "river", "n": 2, "m": 3})
    assert run_check(check, "p", "We walked far. Then the river appeared.") is True
    assert run_check(check, "p", "We walked far. The river appeared.") is False


@pytest.mark.parametrize(
    ("kwargs", "follows", "breaks"),
    [({"min_words": 3, "max_words": 5}, "one two three four", "one two")],
)
def test_word_count_range(kwargs, follows, breaks):
    check = Check("count:word_count_range", kwargs)
    assert run_check(check, "p", follows) is True
    assert run_check(check, "p", breaks) is False
