"""The small task of configs/small.py: reproducible, validation held out from training and from the
benchmarks, every example satisfiable within its families."""

from __future__ import annotations

import json

import pytest

from herl_jax.data import read_examples, resolve_path
from herl_jax.data.build_small_task import CANDIDATES, FAMILIES, TRAIN_FILE, VALIDATION_FILE, main as build
from herl_jax.rubrics.instructions import run_check
from tests.data.test_bundled import _benchmark_texts, _eight_grams, _mostly_inside, _words
from tests.data.witness import witness

TRAIN, VALIDATION = resolve_path(f"bundled:{TRAIN_FILE}"), resolve_path(f"bundled:{VALIDATION_FILE}")


@pytest.fixture(scope="module")
def splits():
    out = {}
    for name, path in (("train", TRAIN), ("validation", VALIDATION)):
        examples, stats = read_examples(path, "hir", max_bad_fraction=0.0)
        assert stats.bad == 0
        out[name] = examples
    return out


def base_prompt(example) -> str:
    """The instruction without its constraint lines (the builder appends them after a blank line)."""
    suffix = "\n\n" + "\n".join(item.text for item in example.rubric.items)
    assert example.prompt.endswith(suffix), example.id
    return example.prompt[: -len(suffix)]


def test_regenerating_reproduces_the_shipped_files(tmp_path):
    build(["--out-dir", str(tmp_path)])
    assert (tmp_path / TRAIN_FILE).read_bytes() == TRAIN.read_bytes()
    assert (tmp_path / VALIDATION_FILE).read_bytes() == VALIDATION.read_bytes()


def test_sizes_and_families(splits):
    assert len(splits["train"]) >= 256 and len(splits["validation"]) >= 64
    allowed = {CANDIDATES[f][0] for f in FAMILIES}
    for example in (*splits["train"], *splits["validation"]):
        ids = [item.check.instruction_id for item in example.rubric.items]
        assert set(ids) <= allowed and len(set(ids)) == len(ids) >= 1, example.id
        assert len(base_prompt(example)) <= 200


def test_validation_prompts_are_disjoint_from_training(splits):
    train = [_words(base_prompt(e)) for e in splits["train"]]
    validation = [_words(base_prompt(e)) for e in splits["validation"]]
    assert not {e.id for e in splits["train"]} & {e.id for e in splits["validation"]}
    assert set(train).isdisjoint(validation) and len(set(validation)) == len(validation)
    assert not _mostly_inside(validation, set().union(*map(_eight_grams, train)))
    assert not _mostly_inside(train, set().union(*map(_eight_grams, validation)))


def test_no_prompt_is_shared_with_the_benchmarks(splits, eval_tasks_dir):
    bases = [_words(base_prompt(e)) for e in (*splits["train"], *splits["validation"])]
    benchmarks = sorted({_words(t) for t in _benchmark_texts(eval_tasks_dir)})
    ifeval = {_words(json.loads(line)["prompt"]) for line in (eval_tasks_dir / "ifeval/data/input_data.jsonl").open()}
    assert ifeval <= set(benchmarks) and set(bases).isdisjoint(benchmarks)
    assert not _mostly_inside(bases, set().union(*map(_eight_grams, benchmarks)))
    assert not _mostly_inside(benchmarks, set().union(*map(_eight_grams, bases)))


def test_every_example_is_satisfiable(splits):
    for example in (*splits["train"], *splits["validation"]):
        checks = [item.check for item in example.rubric.items]
        response = witness(checks)
        assert all(run_check(c, example.prompt, response) for c in checks), (example.id, response)
