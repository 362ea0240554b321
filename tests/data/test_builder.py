"""The builder's parts: constraint drawing, and the pool filter that drops benchmark prompts."""

import json
import random

from herl_jax.data.build_if_dataset import build_row, select_pool
from herl_jax.data.constraints import draw_constraints, keyword_candidates
from herl_jax.data.eval_data import PoolPrompt
from herl_jax.data.formats import parse_hir
from herl_jax.data.overlap import OverlapIndex
from herl_jax.rubrics.instructions import REGISTRY, run_check
from tests.data.witness import witness

LENGTH_IDS = {"length_constraints:number_words", "length_constraints:number_sentences",
              "length_constraints:number_paragraphs", "count:word_count_range", "count:unique_word_count",
              "muldimif:length_words", "muldimif:length_sentences", "muldimif:length_paragraphs",
              "detectable_format:number_bullet_lists", "muldimif:markdown_list", "detectable_format:multiple_sections"}
FORMAT_IDS = {"change_case:english_lowercase", "change_case:english_capital", "muldimif:case", "format:title_case",
              "punctuation:no_comma", "detectable_format:json_format", "muldimif:json", "startend:quotation"}


def draws(prompt, n=300):
    return [draw_constraints(random.Random(f"test:{i}"), prompt) for i in range(n)]


def test_draws_are_seeded_and_hold_two_to_four_known_checks():
    prompt = "Explain how tides work and why there are two high tides a day."
    assert draws(prompt, 20) == draws(prompt, 20)
    for constraints in draws(prompt):
        assert 2 <= len(constraints) <= 4
        assert all(instruction_id in REGISTRY for instruction_id, _ in constraints)


def test_prompts_that_set_a_length_or_a_format_get_no_rule_about_it():
    haiku = {i for constraints in draws("Write a haiku about the first snow.") for i, _ in constraints}
    assert haiku and not haiku & LENGTH_IDS
    code = {i for constraints in draws("Write a Python function that reverses a linked list.") for i, _ in constraints}
    assert code and not code & FORMAT_IDS
    plain = {i for constraints in draws("Tell me about the history of tea in England.") for i, _ in constraints}
    assert LENGTH_IDS | FORMAT_IDS <= plain


def test_required_keywords_come_from_the_prompt():
    prompt = "Describe the migration of monarch butterflies across North America."
    assert keyword_candidates(prompt) == ["migration", "monarch", "butterflies", "across", "north", "america"]
    for constraints in draws(prompt):
        for instruction_id, kwargs in constraints:
            words = kwargs.get("keywords") or kwargs.get("include") or [kwargs.get("keyword")]
            if instruction_id in {"keywords:existence", "keywords:frequency", "muldimif:keywords"}:
                assert all(w in prompt.lower() for w in words)
    assert len(keyword_candidates("Hi there")) >= 2  # stand-ins when the prompt has too few words


def test_a_built_row_reads_back_and_can_be_satisfied():
    prompt = PoolPrompt("alpaca_eval:0", "alpaca_eval", "  Give me three tips for growing tomatoes.  ")
    row = build_row(prompt, seed=0)
    assert json.loads(json.dumps(row)) == row
    example = parse_hir(row, "bundled")
    assert example.id == "alpaca_eval:0" and example.source == "alpaca_eval"
    assert example.prompt.startswith("Give me three tips for growing tomatoes.\n\n")
    checks = [item.check for item in example.rubric.items]
    response = witness(checks)
    assert all(run_check(check, example.prompt, response) for check in checks)


def test_pool_filter_drops_benchmark_prompts_copies_and_unfit_prompts():
    ifeval_prompt = (
        "Write a 300+ word summary of the wikipedia page about the history of the printing press. "
        "Do not use any commas and highlight at least 3 sections that has titles in markdown format."
    )
    edited = ifeval_prompt.replace("300+", "four hundred").upper()  # normalized, most 8-word runs still match
    pool = [
        PoolPrompt("a:0", "a", "How do volcanoes form?"),
        PoolPrompt("a:1", "a", ifeval_prompt),
        PoolPrompt("a:2", "a", edited),
        PoolPrompt("a:3", "a", "how do VOLCANOES form ?!"),  # a repeat once normalized
        PoolPrompt("a:4", "a", "Sort this list in C.", category="coding"),
        PoolPrompt("a:5", "a", "Explain photosynthesis. " * 100),
        PoolPrompt("a:6", "a", "Объясни, как работает фотосинтез в растениях."),
        PoolPrompt("a:7", "a", "Quali sono le cause principali del cambiamento climatico nel mondo di oggi e come "
                                "possiamo ridurre le emissioni di gas serra nelle nostre città?"),
    ]
    kept, dropped = select_pool(pool, OverlapIndex([ifeval_prompt, "An unrelated benchmark prompt."]), max_chars=1500)
    assert [p.id for p in kept] == ["a:0"]
    assert dict(dropped) == {"benchmark_overlap": 2, "repeated": 1, "coding": 1, "too_long": 1, "not_english": 2}


def test_overlap_index_matches_exact_and_near_copies_only():
    index = OverlapIndex(["What is the capital of France?", " ".join(f"w{i}" for i in range(40))])
    assert index.overlaps("what is the CAPITAL of france")
    assert not index.overlaps("What is the capital of Spain?")
    assert index.overlaps("Intro words here. " + " ".join(f"w{i}" for i in range(20)))  # a copied part
    assert not index.overlaps(" ".join(f"w{i}" for i in range(0, 40, 2)))
