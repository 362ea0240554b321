"""The answer graders on hand-written tricky cases. Each expected verdict follows from the benchmark's official
definition (MATH: the last boxed answer, equal as a value; multiple choice: the letter the response states last;
MulDimIF: what the constraint's words ask; LLMEval-Med: the first [N] of the judge's answer), not from the code."""

from pathlib import Path

import pytest

from herl_jax.evaluation.choice import LETTERS, extract_letter, shuffled_options
from herl_jax.evaluation.llmeval_med import JudgePromptsError, judge_messages, judge_templates, parse_score
from herl_jax.evaluation.math_answer import equivalent, grade_math, last_boxed
from herl_jax.evaluation.muldimif_text import parse_constraint
from herl_jax.rubrics.judge_protocol import JudgeAnswerError

DATA = Path(__file__).parent / "data"

# --- MATH-500 ----------------------------------------------------------------------------------------------

BOXED = [
    ("So the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("First \\boxed{3}, then I fixed it: \\boxed{4}", "4"),  # the last box
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),  # nested braces
    ("\\boxed{\\{1, \\{2\\}\\}}", "\\{1, \\{2\\}\\}"),
    ("The value is \\boxed 7 indeed", "7"),
    ("\\fbox{12}", "12"),
    ("No box here, the answer is 5.", None),
    ("\\boxed{unclosed", None),
]


@pytest.mark.parametrize("response, expected", BOXED)
def test_last_boxed(response, expected):
    assert last_boxed(response) == expected


EQUIVALENT = [
    ("\\dfrac{1}{2}", "\\frac12"), ("\\tfrac{3}{4}", "0.75"), ("0.5", "\\frac{1}{2}"), ("1/2", "\\frac{1}{2}"),
    ("-\\frac{1}{2}", "-0.5"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"), ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"), ("(-\\infty, 3]", "(-\\infty,3]"),
    ("x = 3", "3"), ("y=2x+1", "2x+1"), ("10\\text{ cm}", "10"), ("12 inches", "12"), ("90^\\circ", "90"),
    ("90^{\\circ}", "90"), ("\\$18.90", "18.9"), ("50\\%", "50"), ("2.50", "2.5"), ("3.0", "3"), ("1,000", "1000"),
    ("\\text{(C)}", "(C)"), ("x^2+2x+1", "(x+1)^2"), ("\\pi/2", "\\frac{\\pi}{2}"), ("1, 2", "1,2"),
    ("\\frac{a}{b}", "a/b"), ("4\\,000", "4000"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt2}{2}"), ("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}"),  # a root in a fraction
    ("\\{1, 2\\}", "\\{2,1\\}"),  # a set's order does not matter
]
NOT_EQUIVALENT = [
    ("[1,2)", "[1,2]"),  # an interval's ends matter
    ("(1,2)", "(2,1)"),  # so does a tuple's order
    ("2m", "2"),  # a bare letter after a number is algebra, not a unit
    ("5", "6"), ("\\frac{1}{3}", "0.33"), ("1,2", "1,2,3"), ("\\sqrt{2}", "2"), ("x+1", "x-1"),
    ("\\{1,2\\}", "\\{1,2,2\\}"), ("\\{1,2\\}", "\\{1,3\\}"),  # a set's elements do
]


@pytest.mark.parametrize("predicted, reference", EQUIVALENT)
def test_equivalent_answers(predicted, reference):
    assert equivalent(predicted, reference) and equivalent(reference, predicted)


@pytest.mark.parametrize("predicted, reference", NOT_EQUIVALENT)
def test_different_answers(predicted, reference):
    assert not equivalent(predicted, reference)


def test_an_unboxed_answer_is_wrong_even_when_it_is_right():
    assert grade_math("The answer is 1/2.", "\\frac{1}{2}") == {"answer": None, "correct": False}
    assert grade_math("We get $x = \\boxed{3}$.", "3") == {"answer": "3", "correct": True}


# --- Multiple choice ---------------------------------------------------------------------------------------

LETTER_CASES = [
    ("The answer is (C)", 4, "C"),
    ("After weighing the options: **C**", 4, "C"),
    ("Answer: C.", 4, "C"),
    ("**Answer:** B", 4, "B"),
    ("The correct answer is **D**.", 4, "D"),
    ("Answer: $\\boxed{A}$", 4, "A"),
    ("Nitrogen dominates, so\n\nB", 4, "B"),  # a trailing letter
    ("Reasoning...\n(C)", 4, "C"),
    ("Answer: A. Wait, that is wrong: the answer is D.", 4, "D"),  # the last stated answer wins
    ("**B** looks tempting, but Answer: C", 4, "C"),
    ("Answer: J", 10, "J"),  # MMLU-Pro goes up to J
    ("Answer: J", 4, None),  # ... GPQA to D
    ("Answer: E", 4, None),
    ("I cannot help with that.", 4, None),  # a refusal states no letter
    ("The answer is: I don't know.", 10, None),  # the pronoun I is not option I
    ("Answer: I", 10, "I"),
    ("Both A and B seem plausible to me", 4, None),  # letters named, none stated as the answer
    ("", 4, None),
]


@pytest.mark.parametrize("response, options, expected", LETTER_CASES)
def test_extract_letter(response, options, expected):
    assert extract_letter(response, options) == expected


def test_gpqa_shuffle_is_seeded_per_question_and_recorded():
    correct, incorrect = "Nitrogen", ["Oxygen", "Argon", "Carbon dioxide"]
    options, order = shuffled_options(correct, incorrect, seed=0, key="recA1")
    assert sorted(order) == [0, 1, 2, 3] and options == [[correct, *incorrect][i] for i in order]
    assert shuffled_options(correct, incorrect, seed=0, key="recA1") == (options, order)  # same seed, same order
    orders = {tuple(shuffled_options(correct, incorrect, seed=s, key="recA1")[1]) for s in range(20)}
    assert len(orders) > 5  # the seed changes it
    positions = [shuffled_options(correct, incorrect, seed=0, key=f"rec{i}")[1].index(0) for i in range(200)]
    assert {LETTERS[p] for p in positions} == set("ABCD")  # the correct answer is not always in one place


# --- MulDimIF: the release's free-text constraints read as our checks -------------------------------------

PARSED = [
    (["Length", "Words", "The answer must contain at most 50 words"], "muldimif:length_words", {"max_words": 50}),
    (["Length", "Words", "ensure that it is at least one hundred words"], "muldimif:length_words", {"min_words": 100}),
    (["Length", "Words", "Range: 50-100 words"], "muldimif:length_words", {"min_words": 50, "max_words": 100}),
    (["Length", "Words", "The answer must be between 10 and 20 words."], "muldimif:length_words",
     {"min_words": 10, "max_words": 20}),
    (["Length", "Sentences", "The response must not exceed three sentences"], "muldimif:length_sentences",
     {"max_sentences": 3}),
    (["Length", "Sentences", "remains a single sentence"], "muldimif:length_sentences",
     {"min_sentences": 1, "max_sentences": 1}),
    (["Length", "Paragraphs", "The note must contain between 3 to 5 paragraphs"], "muldimif:length_paragraphs",
     {"min_paragraphs": 3, "max_paragraphs": 5}),
    (["Content", "Keywords", "Must include the keywords 'packing list' and 'gensets'"], "muldimif:keywords",
     {"include": ["packing list", "gensets"]}),
    (["Content", "Keywords: Must include", "The answer must include the keyword 'Mulan'."], "muldimif:keywords",
     {"include": ["Mulan"]}),
    (["Content", "Punctuation", "Ending punctuation must be a question mark"], "muldimif:ending_punctuation",
     {"punctuation": "?"}),
    (["Content", "Punctuation", "it is essential that the script concludes with an exclamation mark"],
     "muldimif:ending_punctuation", {"punctuation": "!"}),
    (["Language", "English", "The answer must use capitalized letters for each word."], "muldimif:case",
     {"style": "title"}),
    (["Language", "English: All Uppercase", "The answer must be written entirely in uppercase letters."],
     "muldimif:case", {"style": "upper"}),
    (["Language", "Chinese", "The answer must be in Simplified Chinese"], "muldimif:language", {"language": "zh-cn"}),
    (["Language", "Chinese: Traditional", "確保使用繁體中文書寫"], "muldimif:language", {"language": "zh-tw"}),
    (["Format", "Markdown", "the answer must include a Markdown heading at level 2"], "muldimif:markdown_headings",
     {"level": 2, "min_count": 1}),
    (["Format", "Table", "The answer must include a table with no more than 2 rows"], "muldimif:markdown_table",
     {"max_rows": 2}),
    (["Table", "Column limit", "ensure it is in a table format that strictly adheres to having exactly 2 columns"],
     "muldimif:markdown_table", {"min_columns": 2, "max_columns": 2}),
    (["Format", "Table", "If you choose to use a table, ensure it does not exceed 5 rows"], "muldimif:markdown_table",
     {"max_rows": 5, "optional": True}),
    (["Format", "Json", "Object nesting levels must not exceed 3"], "muldimif:json", {"max_depth": 3}),
]
NOT_PARSED = [
    ["Length", "Words", "Each definition is limited to a maximum of 15 words"],  # a part of the response
    ["Content", "Punctuation", "Each sentence should conclude with a period"],
    ["Language", "English", "The titles of the references should be capitalized"],
    ["Markdown", "Heading levels", "The response must use at least three heading levels"],  # distinct levels
    ["Markdown", "Block quotes", "Use block quotes to highlight key points"],  # no checker of ours
    ["XML", "Number of attributes", "Each XML element must have no more than three attributes"],
    ["Format", "Json", "The answer must include a JSON object with at least two levels of nesting"],
]


@pytest.mark.parametrize("constraint, instruction_id, kwargs", PARSED)
def test_muldimif_constraint_texts_become_checks(constraint, instruction_id, kwargs):
    check = parse_constraint(*constraint)
    assert (check.instruction_id, dict(check.kwargs)) == (instruction_id, kwargs)


@pytest.mark.parametrize("constraint", NOT_PARSED)
def test_muldimif_constraints_we_cannot_check_are_not_read(constraint):
    assert parse_constraint(*constraint) is None


# --- LLMEval-Med's judge -----------------------------------------------------------------------------------

def test_judge_prompts_are_read_from_the_release_script_and_filled():
    templates = judge_templates(DATA / "llmeval_med" / "evaluate" / "Evaluate.py")
    assert set(templates) == {"医疗知识", "医疗推理"}
    system, user = judge_messages(templates["医疗知识"], "Q?", "R {with braces}", "S.", None)
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    assert user["content"] == ('KNOWLEDGE. Question: Q? Response: R {with braces} Reference: S. Checklist: nan '
                               'Reply as {"reason": "...", "score": "[N]"}')


def test_a_missing_judge_script_is_named(tmp_path):
    with pytest.raises(JudgePromptsError, match=f"{tmp_path}/Evaluate.py: no such file"):
        judge_templates(tmp_path / "Evaluate.py")


@pytest.mark.parametrize("answer, score", [
    ('{"判断依据": "good", "得分": "[4]"}', 4), ("Reasoning [5] then [2]", 5), ("[1]", 1)])
def test_judge_score_is_the_first_bracketed_number(answer, score):
    assert parse_score(answer) == score


@pytest.mark.parametrize("answer", ["score: 4", "[7]", "[0]", "", None])
def test_an_answer_without_a_score_1_to_5_is_refused(answer):
    with pytest.raises(JudgeAnswerError):
        parse_score(answer)
