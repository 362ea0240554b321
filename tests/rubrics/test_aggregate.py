"""Eq. 4 and its policies, against hand-computed scores; and the result's feedback lists."""

import pytest

from herl_jax.rubrics import ItemVerdict, Rubric, RubricItem, RubricResult, rubric_score


def test_weighted_fraction():
    # (3 + 1) / (3 + 2 + 1) = 4/6
    assert rubric_score([3, 2, 1], [True, False, True]) == pytest.approx(4 / 6)


def test_all_met_and_none_met():
    assert rubric_score([0.5, 2.0], [True, True]) == 1.0
    assert rubric_score([0.5, 2.0], [False, False]) == 0.0


def test_equal_weights_is_fraction_of_constraints_met():
    assert rubric_score([1, 1, 1, 1], [True, False, False, True]) == 0.5


def test_pitfall_committed_under_both_policies():
    weights = [5, 3, -4]  # the third item is a pitfall; met = the response commits it
    met = [True, False, True]
    assert rubric_score(weights, met, "healthbench") == pytest.approx((5 - 4) / 8)
    assert rubric_score(weights, met, "clamp") == pytest.approx(5 / 8)


def test_pitfall_avoided_under_both_policies():
    weights, met = [5, 3, -4], [True, True, False]
    assert rubric_score(weights, met, "healthbench") == 1.0
    assert rubric_score(weights, met, "clamp") == 1.0


def test_healthbench_score_can_go_negative_like_healthbench_itself():
    # HealthBench: achieved points / possible points, unclipped per example.
    assert rubric_score([2, -6], [False, True], "healthbench") == pytest.approx(-3.0)
    assert rubric_score([2, -6], [False, True], "clamp") == 0.0


def test_unscored_item_drops_the_sample_or_scores_zero():
    assert rubric_score([1, 1], [True, None], unscored="drop") is None
    assert rubric_score([1, 1], [True, None], unscored="zero") == 0.5
    # an unscored pitfall under `zero` is not charged (I = 0)
    assert rubric_score([1, -1], [True, None], "healthbench", "zero") == 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        rubric_score([1], [True, False])
    with pytest.raises(ValueError):
        rubric_score([1], [True], negative_weights="ignore")
    with pytest.raises(ValueError):
        rubric_score([1], [True], unscored="keep")
    with pytest.raises(ValueError):
        Rubric((RubricItem("only a pitfall", -1.0),))


def test_result_feedback_lists_are_numbered_in_rubric_order():
    rubric = Rubric(
        (
            RubricItem("mentions dosage", 2.0),
            RubricItem("recommends an unsafe drug", -3.0),
            RubricItem("cites a guideline", 1.0),
            RubricItem("is concise", 1.0),
        )
    )
    verdicts = (ItemVerdict(False), ItemVerdict(False), ItemVerdict(True), ItemVerdict(None, "judge failed"))
    result = RubricResult(rubric, verdicts, score=None)
    assert result.satisfied == ((2, "recommends an unsafe drug"), (3, "cites a guideline"))
    assert result.unmet == ((1, "mentions dosage"),)
    assert result.unscored == ((4, "is concise"),)
    assert result.dropped


def test_weights_near_the_float_limit_score_as_their_ratios():
    # Python integers are exact: (w1 + w3) / (w1 + w2 + w3) with w = (1.5, 1.7, 0.9) x 1e308 is 2.4 / 4.1;
    # the sums themselves (about 4e308) do not fit a float64.
    weights = [1.5e308, 1.7e308, 0.9e308]
    exact = (int(weights[0]) + int(weights[2])) / (int(weights[0]) + int(weights[1]) + int(weights[2]))
    assert rubric_score(weights, [True, False, True]) == pytest.approx(exact, rel=1e-15)
    # a pitfall of -1.7e308 committed: (1.5 - 1.7) / (1.5 + 0.9)
    assert rubric_score([1.5e308, -1.7e308, 0.9e308], [True, True, False]) == pytest.approx(-0.2 / 2.4, rel=1e-14)
    # and the other end: subnormal weights keep their ratio too
    assert rubric_score([3e-320, 1e-320], [True, False]) == pytest.approx(0.75, rel=1e-3)


def test_non_finite_weights_are_refused():
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite"):
            rubric_score([1.0, bad], [True, False])
