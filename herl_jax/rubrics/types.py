"""Rubric data types: what is checked, how much it weighs, and what the check found.

A rubric item is either programmatic (an instruction id with its kwargs, run by a checker in
`instructions.py`) or judged by the LLM judge (`judge.py`). Items with a negative weight are
"pitfalls" (RaR-Medicine, HealthBench): `met` then means the response *commits* the pitfall, as in
HealthBench's grader, so a met pitfall is bad news.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class Check:
    """A programmatic check: an IFEval / IFBench / MulDimIF-style instruction id and its kwargs."""

    instruction_id: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RubricItem:
    """One criterion c_j with weight w_j; `check is None` means the LLM judge decides it."""

    text: str
    weight: float = 1.0
    check: Check | None = None

    @property
    def judged(self) -> bool:
        return self.check is None


@dataclasses.dataclass(frozen=True)
class Rubric:
    """The criteria of one prompt, in the order they are numbered in feedback and judge prompts."""

    items: tuple[RubricItem, ...]

    def __post_init__(self):
        object.__setattr__(self, "items", tuple(self.items))
        if not any(item.weight > 0 for item in self.items):
            raise ValueError("a rubric needs at least one item with a positive weight (Eq. 4 divides by it)")

    @classmethod
    def from_criteria(cls, criteria: list[tuple[str, float]]) -> Rubric:
        """A rubric of judged items from (text, weight) pairs, e.g. RaR or HealthBench criteria."""
        return cls(tuple(RubricItem(text=text, weight=float(weight)) for text, weight in criteria))


@dataclasses.dataclass(frozen=True)
class ItemVerdict:
    """Whether one item is met; `met is None` means unscored, and `reason` says why."""

    met: bool | None
    reason: str | None = None

    @property
    def scored(self) -> bool:
        return self.met is not None


@dataclasses.dataclass(frozen=True)
class RubricResult:
    """The verdicts for one response and its Eq. 4 score (`None` when the sample is dropped).

    `satisfied` / `unmet` hold (number, text) pairs in rubric order, numbered from 1 as in the rubric,
    for the revise prompt: an item is satisfied when a positive item is met or a pitfall is avoided.
    Unscored items appear in neither list.
    """

    rubric: Rubric
    verdicts: tuple[ItemVerdict, ...]
    score: float | None

    @property
    def dropped(self) -> bool:
        """True when the unscored policy excluded this sample from the loss."""
        return self.score is None

    @property
    def satisfied(self) -> tuple[tuple[int, str], ...]:
        return self._numbered(True)

    @property
    def unmet(self) -> tuple[tuple[int, str], ...]:
        return self._numbered(False)

    @property
    def unscored(self) -> tuple[tuple[int, str], ...]:
        return self._numbered(None)

    def _numbered(self, good: bool | None) -> tuple[tuple[int, str], ...]:
        out = []
        for number, (item, verdict) in enumerate(zip(self.rubric.items, self.verdicts), start=1):
            item_good = None if verdict.met is None else verdict.met == (item.weight >= 0)
            if item_good is good:
                out.append((number, item.text))
        return tuple(out)
