"""What the judge is asked and how its answer is read, in its two modes.

- ``per_response`` (the paper, Appendix E): one call per response judges all of its items and answers
  `{"results": [0 or 1, ...]}`, one entry per item, in order.
- ``per_criterion`` (HealthBench's grader): one call per item answers `{"criteria_met": true|false}`.

Parsing is tolerant of code fences and text around the JSON, and strict about content: a list of the
wrong length or a value other than 0/1/true/false is a failed answer (retried, never guessed).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Literal, Sequence

JudgeMode = Literal["per_response", "per_criterion"]
JUDGE_MODES = ("per_response", "per_criterion")

PER_RESPONSE_SYSTEM = (
    "You are a strict, impartial grader. You are given a user prompt, a response to it, and a numbered "
    "list of rubric items. For each rubric item, decide whether the response satisfies it: 1 if it "
    "does, 0 if it does not. An item that describes an undesirable behaviour is satisfied (1) when the "
    "response shows that behaviour. Answer with JSON only, exactly in the form "
    '{"results": [0 or 1, ...]}, with one entry per rubric item, in the order of the list.'
)

PER_CRITERION_SYSTEM = (
    "You are a strict, impartial grader. You are given a user prompt, a response to it, and one rubric "
    "item. Decide whether the response meets the rubric item. If the item describes an undesirable "
    "behaviour, it is met when the response shows that behaviour. Answer with JSON only, in the form "
    '{"explanation": "<one sentence>", "criteria_met": true or false}.'
)


@dataclasses.dataclass(frozen=True)
class JudgeRequest:
    """The judged items of one response."""

    prompt: str
    response: str
    items: tuple[str, ...]


class JudgeAnswerError(ValueError):
    """The judge answered, but not in a usable form; `kind` names the failure for the stats."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def per_response_messages(prompt: str, response: str, items: Sequence[str]) -> list[dict]:
    numbered = "\n".join(f"{i}. {item}" for i, item in enumerate(items, start=1))
    user = f"[Prompt]\n{prompt}\n\n[Response]\n{response}\n\n[Rubric items]\n{numbered}"
    return [{"role": "system", "content": PER_RESPONSE_SYSTEM}, {"role": "user", "content": user}]


def per_criterion_messages(prompt: str, response: str, item: str) -> list[dict]:
    user = f"[Prompt]\n{prompt}\n\n[Response]\n{response}\n\n[Rubric item]\n{item}"
    return [{"role": "system", "content": PER_CRITERION_SYSTEM}, {"role": "user", "content": user}]


def parse_results(text: str | None, expected: int) -> list[bool]:
    """The `results` list of a per-response answer, as booleans."""
    results = _find_json_field(text, "results")
    if not isinstance(results, list):
        raise JudgeAnswerError("unparseable", "no JSON object with a 'results' list")
    if len(results) != expected:
        raise JudgeAnswerError("wrong_length", f"{len(results)} results for {expected} items")
    return [_as_bool(value) for value in results]


def parse_criterion(text: str | None) -> bool:
    """The `criteria_met` verdict of a per-criterion answer."""
    return _as_bool(_find_json_field(text, "criteria_met"))


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise JudgeAnswerError("unparseable", f"verdict {value!r} is not 0/1/true/false")


_OBJECT_START = re.compile(r"\{")


def _find_json_field(text: str | None, field: str):
    """The value of `field` in the first JSON object in `text` that has it (fences, prose around it ok)."""
    decoder = json.JSONDecoder()
    for match in _OBJECT_START.finditer(text or ""):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and field in value:
            return value[field]
    raise JudgeAnswerError("unparseable", f"no JSON object with a {field!r} field")
