"""The samples log's rows (step/group_samples.py) for the scripted step of test_phases.py: every field of the
hand-built groups against values written out here from the scripts and docs/algorithm.md §2 (bonus Eq. 8,
advantages Eq. 10 re-derived in float64), the revise prompt against the context the revision was trained under,
and the seeded choice that prefers revised groups."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from herl_jax.learner.seeds import StepSeeds
from herl_jax.models import load_tokenizer
from herl_jax.step.group_samples import choose_groups, sample_rows
from tests.training.test_phases import ALPHA, _advantages, _run, _text


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m-instruct")


def _rows(tokenizer, count=4, **herl):
    experience, _, _ = _run(tokenizer, keep_groups=True, **herl)
    return experience, sample_rows(experience.groups, tokenizer, count, StepSeeds(0, 3))


def _check_members(row, sources, before, after):
    members = row["members"]
    assert [(m["source"], m["index"]) for m in members] == sources
    np.testing.assert_allclose([m["reward_before_bonus"] for m in members], before, rtol=0, atol=1e-12)
    np.testing.assert_allclose([m["reward"] for m in members], after, rtol=0, atol=1e-12)
    np.testing.assert_allclose([m["advantage"] for m in members], _advantages(after), rtol=0, atol=1e-9)


def test_rows_of_every_case(tokenizer):
    experience, rows = _rows(tokenizer)
    assert [r["prompt_id"] for r in rows] == ["A", "B", "D", "E"]  # C: one scored member; F: too long
    assert {r["step"] for r in rows} == {4}  # step index 3, numbered from 1 as in metrics.jsonl
    assert json.loads(json.dumps(rows)) == rows  # plain JSON
    a, b, d, e = rows

    assert a["prompt"] == "task-A: write a short note."
    assert a["rubric"] == [{"id": j + 1, "text": f"item {j}", "weight": 1.0} for j in range(3)]
    assert [r["text"] for r in a["rollouts"]] == [_text("A", i) for i in range(4)]
    assert [r["reward"] for r in a["rollouts"]] == [0.8, 0.2, 0.6, 0.2]
    assert [(r["met"], r["unmet"]) for r in a["rollouts"]] == [([1, 2], [3]), ([], [1, 2, 3]), ([1], [2, 3]),
                                                              ([], [1, 2, 3])]
    assert a["candidates"] == [0] and a["dropped_rollouts"] == 0
    [revision] = a["revisions"]
    assert (revision["candidate"], revision["text"], revision["reward"]) == (0, "revision A row0 score 0.0", 0.0)
    assert (revision["met"], revision["unmet"], revision["best"]) == ([], [1, 2, 3], True)
    assert revision["bonus"] == pytest.approx(ALPHA * (0.0 - 0.8), abs=1e-12)
    assert (a["joined"], a["copy_of"], a["replaced_slot"]) == ("revision", None, None)
    bonused = 0.8 + ALPHA * (0.0 - 0.8)
    _check_members(a, [("rollout", i) for i in range(4)] + [("revision", 0)], [0.8, 0.2, 0.6, 0.2, 0.0],
                   [bonused, 0.2, 0.6, 0.2, 0.0])

    # B: rollout 1 dropped; rows 0 and 2 (positions 0 and 1) tied candidates; the first revision dropped.
    assert [r["text"] for r in b["rollouts"]] == [_text("B", i) for i in (0, 2, 3)] and b["dropped_rollouts"] == 1
    assert b["candidates"] == [0, 1]
    dropped, kept = b["revisions"]
    assert (dropped["reward"], dropped["bonus"], dropped["best"], dropped["unscored"]) == (None, None, False, [1, 2, 3])
    assert (kept["candidate"], kept["reward"], kept["best"]) == (1, 1.0, True)
    assert kept["bonus"] == pytest.approx(ALPHA * (1.0 - 0.5), abs=1e-12)
    _check_members(b, [("rollout", 0), ("rollout", 1), ("rollout", 2), ("revision", 1)], [0.5, 0.5, 0.25, 1.0],
                   [0.5, 0.5 + ALPHA * 0.5, 0.25, 1.0])

    assert (d["candidates"], d["revisions"], d["joined"]) == ([], [], None)  # solved
    _check_members(d, [("rollout", i) for i in range(4)], [1.0] * 4, [1.0] * 4)
    assert (e["candidates"], e["revisions"], e["joined"]) == ([0], [], None)  # its revise prompt was too long
    _check_members(e, [("rollout", i) for i in range(4)], [0.1, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0])

    # The members are the training records themselves, in order.
    records = [(m["reward"], m["advantage"]) for row in rows for m in row["members"]]
    assert records == [(r.reward, r.advantage) for r in experience.records]


def test_the_revise_prompt_is_the_context_the_revision_was_trained_under(tokenizer):
    experience, rows = _rows(tokenizer)
    revise_prompt = rows[0]["revisions"][0]["revise_prompt"]
    trained = experience.records[4]  # A's appended revision
    assert trained.is_revision
    assert revise_prompt == tokenizer.decode(trained.context_ids, skip_special_tokens=False)
    assert revise_prompt.startswith("<|im_start|>") and "[Draft]\ndraft A row0 score 0.8" in revise_prompt
    assert "Unmet:\n3. item 2" in revise_prompt  # the feedback the draft got: its unmet item, numbered


def test_a_failed_revision_shows_the_copy_that_replaced_it(tokenizer):
    _, rows = _rows(tokenizer, require_improvement=True)
    a = rows[0]
    assert (a["joined"], a["copy_of"]) == ("copy", 0)
    assert a["revisions"][0]["best"]  # τ̃*, which lost to rollout 0 (0.0 < 0.8)
    bonused = 0.8 + ALPHA * (0.0 - 0.8)
    _check_members(a, [("rollout", i) for i in range(4)] + [("copy", 0)], [0.8, 0.2, 0.6, 0.2, 0.8],
                   [bonused, 0.2, 0.6, 0.2, bonused])


def test_replace_mode_shows_the_slot_the_revision_took(tokenizer):
    _, rows = _rows(tokenizer, group_mode="replace")
    a = rows[0]
    slot = a["replaced_slot"]
    assert slot in range(4) and a["joined"] == "revision"
    sources = [("rollout", i) for i in range(4)]
    sources[slot] = ("revision", 0)
    assert [(m["source"], m["index"]) for m in a["members"]] == sources
    assert a["members"][slot]["reward"] == a["members"][slot]["reward_before_bonus"] == 0.0


def test_the_choice_prefers_revised_groups_and_is_seeded(tokenizer):
    experience, _, _ = _run(tokenizer, keep_groups=True)
    groups = experience.groups  # A, B revised; D, E not
    assert choose_groups(groups, 4, StepSeeds(0, 3)) == [0, 1, 2, 3]
    picks = {tuple(choose_groups(groups, 3, StepSeeds(seed, step))) for seed in range(4) for step in range(8)}
    assert picks == {(0, 1, 2), (0, 1, 3)}  # both revised groups always, then either other
    ones = {tuple(choose_groups(groups, 1, StepSeeds(seed, step))) for seed in range(4) for step in range(8)}
    assert ones == {(0,), (1,)}
    assert all(choose_groups(groups, 2, StepSeeds(s, 5)) == choose_groups(groups, 2, StepSeeds(s, 5)) for s in range(3))


def test_groups_are_kept_only_when_asked_and_travel_between_processes(tokenizer):
    assert _run(tokenizer)[0].groups == ()
    groups = _run(tokenizer, keep_groups=True)[0].groups
    assert len(groups) == 4 and pickle.loads(pickle.dumps(groups)) == groups  # parallel.allgather_objects pickles
