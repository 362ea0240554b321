"""The bundled instruction-following set: reproducible, disjoint from the benchmarks, satisfiable."""

import ast
import collections
import json
import re

import pytest

from herl_jax.data import BUNDLED_IF_TRAIN, read_examples, resolve_path
from herl_jax.data.build_if_dataset import main as build
from herl_jax.data.constraints import KINDS
from herl_jax.rubrics import RubricScorer, ScorerConfig
from herl_jax.rubrics.instructions import run_check
from tests.data.witness import witness

BUNDLED = resolve_path(BUNDLED_IF_TRAIN)


@pytest.fixture(scope="module")
def examples():
    examples, stats = read_examples(BUNDLED, "hir", max_bad_fraction=0.0)
    assert stats.bad == 0
    return examples


def test_regenerating_reproduces_the_shipped_file_byte_for_byte(tmp_path, capsys):
    build(["--out", str(tmp_path / "if_train.jsonl")])
    assert (tmp_path / "if_train.jsonl").read_bytes() == BUNDLED.read_bytes()
    assert f"wrote {BUNDLED.read_text().count(chr(10))} examples" in capsys.readouterr().out


def test_size_and_composition(examples):
    assert BUNDLED.stat().st_size < 2_000_000
    assert len(examples) > 1000
    rows = [json.loads(line) for line in BUNDLED.read_text().splitlines()]
    assert all(set(row) == {"id", "source", "prompt", "instruction_id_list", "kwargs"} for row in rows)
    assert collections.Counter(e.source for e in examples).keys() == {"alpaca_eval", "arena_hard"}
    assert all(2 <= len(e.rubric.items) <= 4 for e in examples)
    counts = collections.Counter(item.check.instruction_id for e in examples for item in e.rubric.items)
    assert set(counts) == {kind.instruction_id for kind in KINDS}
    assert min(counts.values()) >= 20
    families = collections.Counter(i.split(":")[0] if i.startswith("muldimif:") else i for i in counts)
    assert families["muldimif"] == 10


def _pool_texts(tasks_dir):
    alpaca = json.loads((tasks_dir / "alpaca_eval/data/alpaca_eval_gpt4_baseline.json").read_text())
    arena = [json.loads(line) for line in (tasks_dir / "arena_hard/data/arena-hard-v2.0/question.jsonl").open()]
    return {
        **{f"alpaca_eval:{i}": row["instruction"] for i, row in enumerate(alpaca)},
        **{f"arena_hard:{row['uid']}": row["prompt"] for row in arena},
    }


def _base_prompts(examples, tasks_dir):
    """Each example's prompt is its pool prompt, a blank line, and its checkers' descriptions, one a line."""
    pool = _pool_texts(tasks_dir)
    bases = []
    for example in examples:
        suffix = "\n\n" + "\n".join(item.text for item in example.rubric.items)
        assert example.prompt.endswith(suffix), example.id
        base = example.prompt[: -len(suffix)]
        assert base == pool[example.id].strip()
        bases.append(base)
    return bases


def _words(text):
    return " ".join(re.findall(r"\w+", text.lower()))


def _eight_grams(words):
    tokens = words.split()
    return {tuple(tokens[i : i + 8]) for i in range(len(tokens) - 7)}


def _mostly_inside(texts, other_grams):
    """Texts of 8+ words at least half of whose word 8-grams occur in `other_grams` (a copy, or nearly)."""
    return [t for t in texts if (grams := _eight_grams(t)) and len(grams & other_grams) >= len(grams) / 2]


def _benchmark_texts(tasks_dir):
    texts = [json.loads(line)["prompt"] for line in (tasks_dir / "ifeval/data/input_data.jsonl").open()]
    texts += [json.loads(line)["prompt"] for line in (tasks_dir / "ifbench/data/IFBench_test.jsonl").open()]
    for line in (tasks_dir / "healthbench/data/healthbench_eval.jsonl").open():
        conversation = json.loads(line)["prompt"]  # a list, or its Python repr
        conversation = ast.literal_eval(conversation) if isinstance(conversation, str) else conversation
        texts += [message["content"] for message in conversation]
    for path in (tasks_dir / "writingbench").rglob("*.jsonl"):
        texts += [json.loads(line)["query"] for line in path.open() if line.strip()]
    return texts


def test_no_prompt_is_shared_with_ifeval_ifbench_healthbench_or_writingbench(examples, eval_tasks_dir):
    bases = [_words(b) for b in _base_prompts(examples, eval_tasks_dir)]
    benchmarks = sorted({_words(t) for t in _benchmark_texts(eval_tasks_dir)})
    assert len(benchmarks) > 541 + 300 + 1000 + 1000  # HealthBench: 500 conversations, over 1,000 messages
    assert set(bases).isdisjoint(benchmarks)
    benchmark_grams = set().union(*map(_eight_grams, benchmarks))
    base_grams = set().union(*map(_eight_grams, bases))
    assert not _mostly_inside(bases, benchmark_grams)  # no pool prompt inside (or close to) a benchmark prompt
    assert not _mostly_inside(benchmarks, base_grams)  # and no benchmark prompt inside a pool prompt


MUTUALLY_EXCLUSIVE = [  # at most one of each group: two case styles or two length limits can contradict
    {"change_case:english_lowercase", "change_case:english_capital", "muldimif:case", "format:title_case",
     "change_case:capital_word_frequency"},
    {"length_constraints:number_words", "count:word_count_range", "muldimif:length_words"},
    {"length_constraints:number_sentences", "muldimif:length_sentences"},
    {"length_constraints:number_paragraphs", "muldimif:length_paragraphs", "detectable_format:multiple_sections"},
    {"startend:end_checker", "muldimif:ending_punctuation", "startend:quotation"},
    {"detectable_format:json_format", "muldimif:json", "startend:quotation"},
]
JSON = {"detectable_format:json_format", "muldimif:json"}
NOT_WITH_JSON = {"punctuation:no_comma", "muldimif:markdown_table", "muldimif:markdown_list",
                 "muldimif:markdown_headings", "detectable_format:number_bullet_lists", "detectable_format:title",
                 "change_case:english_capital", "muldimif:ending_punctuation"}


def test_no_example_holds_contradicting_constraints(examples):
    for example in examples:
        ids = {item.check.instruction_id for item in example.rubric.items}
        assert len(ids) == len(example.rubric.items), example.id
        for group in MUTUALLY_EXCLUSIVE:
            assert len(group & ids) <= 1, (example.id, ids)
        assert not (ids & JSON and ids & NOT_WITH_JSON), (example.id, ids)


def test_every_constraint_set_is_satisfiable_and_scored_without_error(examples):
    plain = "Here is a short answer, written without any effort to follow the rules."
    for example in examples:
        checks = [item.check for item in example.rubric.items]
        response = witness(checks)
        failed = [c.instruction_id for c in checks if not run_check(c, example.prompt, response)]
        assert not failed, (example.id, failed, response)
        assert all(isinstance(run_check(c, example.prompt, plain), bool) for c in checks)


def test_the_scorer_gives_full_reward_to_witnesses(examples):
    sample = examples[::50]
    prompts = [e.prompt for e in sample] * 2
    responses = [witness([i.check for i in e.rubric.items]) for e in sample] + ["ok"] * len(sample)
    with RubricScorer(ScorerConfig(workers=2)) as scorer:
        results = scorer.score_batch(prompts, responses, [e.rubric for e in sample] * 2)
    assert [r.score for r in results[: len(sample)]] == [1.0] * len(sample)
    assert all(r.score is not None and r.score < 1.0 for r in results[len(sample) :])
    assert scorer.stats.as_dict()
