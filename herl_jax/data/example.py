"""One training or validation prompt: its chat messages, its rubric, and what the revise prompt needs; or, for
the offline baselines (SFT, DPO), a prompt with given responses."""

from __future__ import annotations

import dataclasses
from typing import Literal, Mapping

from herl_jax.rubrics.types import Rubric

TemplateKind = Literal["instruction", "rubric"]
TEMPLATE_KINDS = ("instruction", "rubric")  # keys of herl_jax.herl.prompts' templates


@dataclasses.dataclass(frozen=True)
class Example:
    """A prompt q with its rubric.

    messages: the prompt as chat messages, ({"role": ..., "content": ...}, ...), ending with a user turn.
    instruction: the text shown as `[Instruction]` in the revise prompt (usually the last user message).
    template: which revise-prompt template fits: 'instruction' (IF data) or 'rubric' (RaR-style data).
    """

    id: str
    messages: tuple[Mapping[str, str], ...]
    instruction: str
    rubric: Rubric
    template: TemplateKind
    reference_answer: str | None = None
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))
        if self.template not in TEMPLATE_KINDS:
            raise ValueError(f"template must be one of {TEMPLATE_KINDS}, got {self.template!r}")
        if not self.messages or self.messages[-1]["role"] != "user":
            raise ValueError("an example's messages must end with a user turn")

    @property
    def prompt(self) -> str:
        """The last user message: the question itself."""
        return self.messages[-1]["content"]


@dataclasses.dataclass(frozen=True)
class OfflineExample:
    """A prompt with given responses, for the offline objectives: SFT's one target (response,), or DPO's
    (chosen, rejected). messages: as ``Example``'s, ending with a user turn."""

    id: str
    messages: tuple[Mapping[str, str], ...]
    responses: tuple[str, ...]
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))
        if not self.messages or self.messages[-1]["role"] != "user":
            raise ValueError("an example's messages must end with a user turn")
        if not self.responses:
            raise ValueError("an offline example needs at least one response")
