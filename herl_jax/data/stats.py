"""What reading a data file skipped, and why; the error raised when too much of it is bad."""

from __future__ import annotations

import collections
import dataclasses

from herl_jax.errors import UserError

LINES_PER_REASON = 3


class RowError(ValueError):
    """A row that cannot become an example; `reason` is a short key such as 'missing_field'."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DataError(UserError, ValueError):
    """A data file that cannot be used: unreadable, empty, or with too many malformed rows."""


@dataclasses.dataclass
class ReadStats:
    """Rows read from one file: how many made examples, and the skipped ones by reason.

    `first_lines[reason]` holds the first few (line or row number, detail) pairs, numbered from 1.
    """

    path: str
    rows: int = 0
    kept: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    first_lines: dict[str, list[tuple[int, str]]] = dataclasses.field(default_factory=dict)

    @property
    def bad(self) -> int:
        return sum(self.skipped.values())

    @property
    def bad_fraction(self) -> float:
        return self.bad / self.rows if self.rows else 0.0

    def skip(self, line: int, error: RowError) -> None:
        self.skipped[error.reason] += 1
        seen = self.first_lines.setdefault(error.reason, [])
        if len(seen) < LINES_PER_REASON:
            seen.append((line, error.detail))

    def summary(self) -> str:
        parts = [f"{self.path}: {self.kept} of {self.rows} rows kept"]
        for reason, count in sorted(self.skipped.items()):
            where = "; ".join(f"line {line}: {detail}" for line, detail in self.first_lines[reason])
            parts.append(f"{reason}: {count} (e.g. {where})")
        return "\n  ".join(parts)

    def as_dict(self) -> dict:
        """Plain counters, for logs: rows, kept, and `skipped/<reason>` counts."""
        return {"rows": self.rows, "kept": self.kept, **{f"skipped/{k}": v for k, v in sorted(self.skipped.items())}}
