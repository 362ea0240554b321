"""Multiple choice (GPQA, MMLU-Pro): the question as a prompt, GPQA's seeded shuffle, and the answer letter of a
response.

The letter a response states, the last stated one winning (a model that changes its mind is graded on its
final answer): each of these forms is found, with its position, and the one that ends last wins:
- an answer statement: `Answer: C`, `The answer is (C)`, `the correct answer is **C**`, `Answer: $\\boxed{C}$`;
- a bold or boxed letter on its own: `**C**`, `**(C)**`, `\\boxed{C}`;
- a trailing letter: the response ends with `C`, `(C)`, `C.` or `C)` after a space or a line break.
A letter outside the question's choices (`E` on a four-choice GPQA question) is not an answer; a refusal or a
response stating no letter is graded wrong, never guessed.
"""

from __future__ import annotations

import random
import re
import string
from typing import Sequence

LETTERS = string.ascii_uppercase[:10]  # A..J: MMLU-Pro has up to ten options

_OPEN = r"(?:\*\*|\*|\$|\\boxed\{|\\text\{|\\textbf\{|\(|\[|\s)*"
_STATEMENT = re.compile(r"(?i:answer)(?:\s+(?i:is))?\s*(?:\*\*)?\s*[:：]?\s*(?:\*\*)?" + _OPEN + r"([A-J])(?![\w'])")
_EMPHASIS = re.compile(r"(?:\*\*\(?([A-J])\)?\*\*|\\boxed\{\(?([A-J])\)?\})")
_TRAILING = re.compile(r"(?:^|\s)\(?([A-J])[).]?\s*$")
_PRONOUN = re.compile(r"\s*(?:'m|’m|am|think|do|don't|can|cannot|can't|believe|would|will|need|have|must|apologi[sz]e)\b")


def choice_prompt(question: str, options: Sequence[str]) -> str:
    """The question and its lettered options, asking for a final `Answer: LETTER` line."""
    letters = LETTERS[:len(options)]
    lines = "\n".join(f"{letter}) {option}" for letter, option in zip(letters, options))
    return (f"Answer the following multiple choice question. The last line of your response should be of the "
            f"form 'Answer: LETTER' (without quotes), where LETTER is one of {', '.join(letters)}. Think step by "
            f"step before answering.\n\n{question}\n\n{lines}")


def extract_letter(response: str, n_options: int) -> str | None:
    """The last letter `response` states as its answer among the first `n_options` letters, or None."""
    allowed = LETTERS[:n_options]
    text = response.rstrip()
    found = [(m.end(), next(g for g in m.groups() if g))
             for pattern in (_STATEMENT, _EMPHASIS, _TRAILING) for m in pattern.finditer(text)]
    # "The answer is: I don't know" states no letter: the pronoun I is not option I
    found = [(end, letter) for end, letter in found
             if letter in allowed and not (letter == "I" and _PRONOUN.match(text, end))]
    return max(found)[1] if found else None


def shuffled_options(correct: str, incorrect: Sequence[str], seed: int, key: str) -> tuple[list[str], list[int]]:
    """GPQA's options in a seeded order: (options, order), where options[i] = ([correct, *incorrect])[order[i]].

    The order depends only on `seed` and the question's `key` (its Record ID), not on the file's row order, so
    a `--limit` run and a full run ask each question the same way.
    """
    order = list(range(1 + len(incorrect)))
    random.Random(f"{seed}:{key}").shuffle(order)
    pool = [correct, *incorrect]
    return [pool[i] for i in order], order
