"""MulDimIF-style constraints: a response that follows each and one that does not, in English and Chinese."""

import pytest

from herl_jax.rubrics.instructions import describe, instruction_rubric, run_check
from herl_jax.rubrics.muldimif import INSTRUCTION_DICT
from herl_jax.rubrics.types import Check

TABLE = "| Name | Age |\n|---|---|\n| Ann | 30 |\n| Bob | 41 |"

CASES = [
    ("muldimif:length_words", {"max_words": 5}, "Short and sweet answer.", "This answer has far more than five words."),
    ("muldimif:length_words", {"min_words": 4, "max_words": 6}, "我们去公园", "我们去"),  # one word per CJK character
    ("muldimif:length_sentences", {"min_sentences": 2},
     "Dr. Lee came at 5 p.m. today. She left.", "Dr. Lee came at 5 p.m. today."),
    ("muldimif:length_sentences", {"max_sentences": 2}, "今天很好。我们去公园。", "今天很好。我们去公园。然后回家。"),
    ("muldimif:length_paragraphs", {"min_paragraphs": 2, "max_paragraphs": 2}, "One.\n\nTwo.", "One.\nStill one."),
    ("muldimif:keywords", {"include": ["machine learning"], "exclude": ["deep"]},
     "Machine learning is useful.", "Deep machine learning is useful."),
    ("muldimif:keywords", {"include": ["data"], "min_count": 2}, "data in, data out", "data in, results out"),
    ("muldimif:ending_punctuation", {"punctuation": "."}, "It ends with a period.  \n", "It ends with a bang!"),
    ("muldimif:case", {"style": "upper"}, "ALL CAPS HERE 123.", "ALL CAPS hERE."),
    ("muldimif:case", {"style": "lower"}, "all lower here.", "all Lower here."),
    ("muldimif:case", {"style": "title"}, "Every Word Is Capitalized, Even 3 Numbers.", "Every Word is Capitalized."),
    ("muldimif:markdown_headings", {"level": 2, "min_count": 2},
     "## One\ntext\n## Two\ntext", "# One\n## Two\n### Three"),
    ("muldimif:markdown_table", {"max_rows": 2, "max_columns": 2}, TABLE, TABLE + "\n| Cy | 7 |"),
    ("muldimif:markdown_table", {}, TABLE, "Name: Ann, Age: 30"),
    # "if you use a table, at most 2 rows": no table is fine, a longer table is not
    ("muldimif:markdown_table", {"optional": True, "max_rows": 2}, "Name: Ann, Age: 30", TABLE + "\n| Cy | 7 |"),
    ("muldimif:markdown_list", {"min_items": 3, "ordered": True}, "1. a\n2. b\n3. c", "- a\n- b\n- c"),
    ("muldimif:markdown_list", {"max_items": 2}, "- a\n* b", "- a\n- b\n+ c"),
    ("muldimif:json", {"max_depth": 2}, '```json\n{"a": {"b": 1}}\n```', '{"a": {"b": {"c": 1}}}'),
    ("muldimif:json", {}, '[1, 2, 3]', 'Here is JSON: {"a": 1}'),
    ("muldimif:language", {"language": "zh-cn"}, "我们今天去公园散步，天气非常好，大家都很开心。", "We went to the park today."),
    ("muldimif:language", {"language": "zh-tw"}, "我們今天去公園散步，天氣非常好，大家都很開心。", "我们今天去公园散步，天气非常好，大家都很开心。"),
    ("muldimif:language", {"language": "en"}, "We went to the park today and it was lovely.", "12345 !!!"),
]


def test_every_kind_has_a_case():
    assert {case[0] for case in CASES} == set(INSTRUCTION_DICT)


@pytest.mark.parametrize(("instruction_id", "kwargs", "follows", "breaks"), CASES)
def test_follows_and_breaks(instruction_id, kwargs, follows, breaks):
    check = Check(instruction_id, kwargs)
    assert run_check(check, "p", follows) is True
    assert run_check(check, "p", breaks) is False


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "description"),
    [
        ("muldimif:length_words", {"min_words": 50, "max_words": 80},
         "The response must contain between 50 and 80 words."),
        ("muldimif:length_sentences", {"max_sentences": 30}, "The response must contain at most 30 sentences."),
        ("muldimif:keywords", {"include": ["African Language"]},
         "The response must include the keywords 'African Language'."),
        ("muldimif:ending_punctuation", {"punctuation": "."}, "The response must end with the punctuation mark '.'."),
        ("muldimif:markdown_headings", {"level": 2},
         "The response must contain at least 1 level-2 Markdown headings (## Heading)."),
        ("muldimif:language", {"language": "zh-tw"}, "The response must be written in Traditional Chinese."),
    ],
)
def test_descriptions_state_the_constraint(instruction_id, kwargs, description):
    assert describe(Check(instruction_id, kwargs)) == description


def test_constraints_mix_with_ifeval_ones_in_one_rubric():
    rubric = instruction_rubric(
        ["muldimif:length_words", "punctuation:no_comma"], [{"max_words": 150}, {}], weights=[2.0, 1.0]
    )
    assert [i.weight for i in rubric.items] == [2.0, 1.0]
    assert rubric.items[0].text == "The response must contain at most 150 words."


def test_missing_kwargs_are_rejected_when_the_rubric_is_built():
    with pytest.raises(ValueError, match="min_words or max_words"):
        instruction_rubric(["muldimif:length_words"], [{}])
