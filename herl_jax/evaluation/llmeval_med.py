"""LLMEval-Med's judge, as its release scores a response: the grading prompt of the question's category, read
from the release's own `evaluate/Evaluate.py` (the prompts are the release's text and are not shipped here),
filled with the question, the response, the reference answer and the checklist; the judge's score is the first
`[N]` of its answer, 1 to 5. A response is usable at a score >= 4; the benchmark's number is the share of usable
responses (the release's Overall Performance, one judging run), beside the mean score and each category's.

The release's Evaluate.py defines one f-string per category inside its `getresponse`, named `prompt_<category>`
(`prompt_医疗知识`, ...), using the names Question, Response, Sanswer and checklist. They are read with `ast`,
not run: each becomes a `str.format` template.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

from herl_jax.errors import UserError
from herl_jax.rubrics.judge_protocol import JudgeAnswerError

SYSTEM = "You are a helpful assistant."  # the release's system message to the judge
FIELDS = ("Question", "Response", "Sanswer", "checklist")
USABLE = 4  # a response scored >= 4 is usable (the release's Aggregate.py)
_SCORE = re.compile(r"\[(\d+)\]")


class JudgePromptsError(UserError, ValueError):
    """The release's Evaluate.py is missing, or lacks the prompt of a category; the message names them."""


def judge_templates(path: Path) -> dict[str, str]:
    """category -> its grading prompt as a `str.format` template over FIELDS, from the release's Evaluate.py."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JudgePromptsError(f"{path}: no such file (LLMEval-Med's evaluate/Evaluate.py: set "
                                "--config.llmeval_med.judge_prompts=PATH)") from None
    except (SyntaxError, UnicodeDecodeError) as e:
        raise JudgePromptsError(f"{path}: not a Python file ({e})") from None
    templates = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.startswith("prompt_") and isinstance(node.value, ast.JoinedStr)):
            templates[node.targets[0].id.removeprefix("prompt_")] = _template(node.value, path)
    return templates


def _template(fstring: ast.JoinedStr, path: Path) -> str:
    parts = []
    for value in fstring.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
        elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name) and value.value.id in FIELDS:
            parts.append("{" + value.value.id + "}")
        else:
            raise JudgePromptsError(f"{path}: a grading prompt uses {ast.unparse(value)!r}; expected only "
                                    f"{', '.join(FIELDS)}")
    return "".join(parts)


def judge_messages(template: str, question: str, response: str, reference: str, checklist: str | None) -> list[dict]:
    """The judge's messages for one response; a question without a checklist shows `nan`, as in the release."""
    user = template.format(Question=question, Response=response, Sanswer=reference,
                           checklist=math.nan if checklist is None else checklist)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_score(text: str | None) -> int:
    """The judge's score: the first `[N]` of its answer, 1 to 5."""
    match = _SCORE.search(text or "")
    if not match or not 1 <= int(match.group(1)) <= 5:
        raise JudgeAnswerError("unparseable", "no score [1] to [5] in the answer")
    return int(match.group(1))
