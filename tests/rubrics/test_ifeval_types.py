"""Every IFEval instruction type: a hand-written response that follows it and one that does not."""

import pytest

from herl_jax.rubrics.instructions import REGISTRY, describe, instruction_rubric, run_check
from herl_jax.rubrics.types import Check

ENGLISH = (
    "The weather today is pleasant and mild. People are walking in the park and children are "
    "playing near the old fountain while their parents talk about the coming holidays."
)

# (instruction id, kwargs, a response that follows it, a response that does not)
CASES = [
    ("keywords:existence", {"keywords": ["banana", "river"]},
     "A banana floated down the river.", "A banana sat on the table."),
    ("keywords:frequency", {"keyword": "cat", "frequency": 3, "relation": "at least"},
     "cat and cat and another cat", "a cat and a cat"),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "less than"},
     "one cat only", "cat, cat"),
    ("keywords:forbidden_words", {"forbidden_words": ["very", "nice"]},
     "It was a great day.", "It was a very good day."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 3, "let_relation": "at least"},
     "Zebras zigzag on the zone.", "Zebras run."),
    ("language:response_language", {"language": "fr"},
     "Bonjour, je suis très heureux de vous rencontrer aujourd'hui dans cette belle ville de Paris.", ENGLISH),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "One sentence. Two sentences.", "One. Two. Three. Four."),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     "Dr. Smith arrived at 5 p.m. today. He left soon after.", "Dr. Smith arrived at 5 p.m. today."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First paragraph.\n***\nSecond paragraph.", "First paragraph.\n\nSecond paragraph."),
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"},
     "one two three four five", "one two three four"),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"},
     "one two three four", "one two three four five"),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
     "First we cook.\n\nThen we eat.", "First we cook.\n\nAfter that we eat."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], see you at [address].", "Dear [name], see you soon."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."},
     "Thanks for reading.\nP.S. See you soon.", "Thanks for reading."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* apples\n* pears", "* apples\n* pears\n* plums"),
    ("detectable_format:constrained_response", {},
     "My answer is yes.", "Yes, definitely."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "Here is *one part* and *another part*.", "Here is *one part* only."),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nIntro.\nSection 2\nBody.", "Section 1\nEverything in one section."),
    ("detectable_format:json_format", {},
     '```json\n{"answer": 42}\n```', "The answer is 42."),
    ("detectable_format:title", {},
     "<<A Poem About Joy>>\nJoy is here.", "A Poem About Joy\nJoy is here."),
    ("combination:two_responses", {},
     "Paris is the capital.\n******\nThe capital is Paris.", "Paris is the capital."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a haiku about rain."},
     "Write a haiku about rain. Soft rain on the roof.", "Soft rain on the roof."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"},
     "That is all. Any other questions?", "Any other questions? That is all."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "This is VERY IMPORTANT news.", "This is VERY important news."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "This is VERY important news.", "This is VERY IMPORTANT news."),
    ("change_case:english_capital", {},
     ENGLISH.upper(), ENGLISH),
    ("change_case:english_lowercase", {},
     ENGLISH.lower(), ENGLISH),
    ("punctuation:no_comma", {},
     "No commas here at all.", "Well, here is one."),
    ("startend:quotation", {},
     '"The whole answer is quoted."', 'The answer is "partly" quoted.'),
]

IFEVAL_TYPES = [
    instruction_id for instruction_id in REGISTRY
    if instruction_id.split(":")[0] in {
        "keywords", "language", "length_constraints", "detectable_content", "detectable_format",
        "combination", "startend", "change_case", "punctuation",
    }
]


def test_every_ifeval_type_has_a_case():
    assert len(IFEVAL_TYPES) == 25
    assert {case[0] for case in CASES} == set(IFEVAL_TYPES)


@pytest.mark.parametrize(("instruction_id", "kwargs", "follows", "breaks"), CASES)
def test_follows_and_breaks(instruction_id, kwargs, follows, breaks, official_registry):
    check = Check(instruction_id, kwargs)
    assert run_check(check, "any prompt", follows) is True
    assert run_check(check, "any prompt", breaks) is False
    assert official_strict(official_registry, check, "any prompt", follows) is True
    assert official_strict(official_registry, check, "any prompt", breaks) is False


def official_strict(registry, check, prompt, response):
    """The official evaluation_lib's strict check for one instruction."""
    from eval_framework.tasks.ifeval.evaluation import InputExample, test_instruction_following_strict

    example = InputExample(key=0, instruction_id_list=[check.instruction_id], prompt=prompt, kwargs=[check.kwargs])
    return test_instruction_following_strict(example, {prompt: response}).follow_instruction_list[0]


def test_empty_response_follows_nothing():
    # The official evaluation counts an empty (or blank) response as not following, even "no comma".
    assert run_check(Check("punctuation:no_comma"), "p", "   \n") is False


def test_loose_mode_forgives_a_first_line_and_markdown_stars():
    check = Check("startend:quotation")
    response = 'Sure, here it is:\n"The whole answer is quoted."'
    assert run_check(check, "p", response) is False
    assert run_check(check, "p", response, loose=True) is True
    ending = Check("startend:end_checker", {"end_phrase": "Any other questions?"})
    bold = "That is all. **Any other questions?**"
    assert run_check(ending, "p", bold) is False
    assert run_check(ending, "p", bold, loose=True) is True


def test_descriptions_come_from_the_checker_and_state_the_kwargs():
    text = describe(Check("length_constraints:number_words", {"num_words": 300, "relation": "at least"}))
    assert "300" in text and "at least" in text
    rubric = instruction_rubric(["punctuation:no_comma", "keywords:existence"], [{}, {"keywords": ["tea"]}])
    assert [item.check.instruction_id for item in rubric.items] == ["punctuation:no_comma", "keywords:existence"]
    assert "comma" in rubric.items[0].text and "tea" in rubric.items[1].text


def test_unknown_instruction_is_rejected_when_the_rubric_is_built():
    with pytest.raises(KeyError, match="no_such:instruction"):
        instruction_rubric(["no_such:instruction"], [{}])
