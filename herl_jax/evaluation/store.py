"""Per-example results as JSONL, appended as they are made, so an interrupted run resumes.

Each line is one example's record, keyed by its `id`; the last record of an id wins. A record with
`"complete": false` (a judge call failed for good) keeps its response for the next run to grade again
without sampling it again. A torn last line (the process died mid-write) is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable


class ResultStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        """id -> latest record."""
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        for line in self.path.read_text(encoding="utf-8").split("\n"):  # not splitlines: U+2028 is text
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["id"]] = record
        return records

    def append(self, records: Iterable[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if self._torn():
            lines = "\n" + lines  # end the torn line, so it stays apart from the new records
        with self.path.open("a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()

    def _torn(self) -> bool:
        """Whether the file ends inside a line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as f:
            f.seek(-1, 2)
            return f.read(1) != b"\n"
