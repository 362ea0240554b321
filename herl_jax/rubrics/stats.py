"""Counters for everything rubric scoring does, so nothing is lost silently: read them, log them.

The checker pool writes `CheckStats`, the judge writes `JudgeStats` (from its own thread, so the two
never share a field), and the scorer writes the sample-level fields of `ScoringStats`.
"""

from __future__ import annotations

import collections
import dataclasses


@dataclasses.dataclass
class CheckStats:
    checks: int = 0  # programmatic item checks requested
    errors: int = 0  # checks that raised, or whose worker died twice under them: the item is unscored
    timeouts: int = 0  # checks that ran past the time limit: the item is unscored
    worker_restarts: int = 0  # checker processes replaced after a timeout or a crash
    reruns: int = 0  # checks sent again because their worker died under them
    seconds: float = 0.0  # wall time spent in `CheckPool.run`


@dataclasses.dataclass
class JudgeStats:
    items: int = 0  # judged items requested
    cache_hits: int = 0  # items answered from the on-disk cache, no request made
    calls: int = 0  # judge calls needed (one per response or per criterion, by mode)
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    retry_causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    failures: int = 0  # calls that failed for good: their items are unscored
    failure_causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclasses.dataclass
class ScoringStats:
    responses: int = 0
    items: int = 0
    unscored_items: int = 0
    dropped_samples: int = 0  # unscored policy `drop`: excluded from the loss
    zeroed_samples: int = 0  # unscored policy `zero`: unscored items scored as not met
    checks: CheckStats = dataclasses.field(default_factory=CheckStats)
    judge: JudgeStats = dataclasses.field(default_factory=JudgeStats)

    def as_dict(self) -> dict[str, float]:
        """Flat `group/name -> number` for a metrics logger."""
        flat: dict[str, float] = {}
        for prefix, obj in (("rubric", self), ("rubric/check", self.checks), ("rubric/judge", self.judge)):
            for field in dataclasses.fields(obj):
                value = getattr(obj, field.name)
                if isinstance(value, collections.Counter):
                    flat.update({f"{prefix}/{field.name}/{k}": v for k, v in sorted(value.items())})
                elif isinstance(value, (int, float)):
                    flat[f"{prefix}/{field.name}"] = value
        return flat
