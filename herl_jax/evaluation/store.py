"""Stage 4, store: per-item records as JSONL, appended as they are made, so an interrupted run resumes.

Each line is one item's record, keyed by its `id`; the last record of an id wins. A sampled item's
record (Pass@1 with n = 1 greedy response, pass@k with n sampled ones) is

    {"id", "responses": [n texts], "grades": [n benchmark details], "rewards": [n Eq. 4 rewards or
     None], "complete": bool}

and an item whose prompt is too long for the sampler has {"id", "complete": true, "skipped": why}
(guided revision's records: revision.py). A record with `"complete": false` (a judge call failed for
good) keeps its responses for the next run to grade again without sampling them again
(`ResultStore.resume`). A torn last line (the process died mid-write) is ignored. Each record also carries
the key of the weights and settings it was made under, and a rerun reads only its own key's records.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from herl_jax.evaluation.data import BenchmarkItem
from herl_jax.evaluation.generate import Generation
from herl_jax.evaluation.grade import GradedGeneration
from herl_jax.own_files import open_append, writing

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ResumePlan:
    """What a run still has to do for its items: grade stored responses again, or sample anew."""

    regrade: tuple[Generation, ...]  # stored responses whose grading is incomplete
    fresh: tuple[BenchmarkItem, ...]  # items without a stored record


@dataclasses.dataclass(frozen=True)
class GradedRecords:
    """The records a summary scores, and counts of the others (neither enters a metric)."""

    records: tuple[Mapping, ...]  # fully graded, not skipped; in item order
    skipped: int  # prompt too long
    incomplete: int  # a judge call failed for good

    @classmethod
    def of(cls, records: Mapping[str, Mapping]) -> GradedRecords:
        """From id -> record."""
        return cls(records=tuple(r for r in records.values() if "skipped" not in r and r["complete"]),
                   skipped=sum("skipped" in r for r in records.values()),
                   incomplete=sum("skipped" not in r and not r["complete"] for r in records.values()))

    def counts(self) -> dict:
        return {"n": len(self.records), "skipped": self.skipped, "incomplete": self.incomplete}


class ResultStore:
    """One JSONL file of records. With a `key` (fingerprint.records_key: the weights and settings the records
    are made under), appended records carry it and only records that carry it are read: a rerun with other
    weights or settings samples again instead of resuming. Without one, every record is read (inspection)."""

    def __init__(self, path: str | Path, key: str | None = None):
        self.path = Path(path)
        self.key = key

    def load(self) -> dict[str, dict]:
        """id -> latest record (of this store's key)."""
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        others = set()
        for line in self.path.read_text(encoding="utf-8").split("\n"):  # not splitlines: U+2028 is text
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if self.key is not None and record.get("key") != self.key:
                others.add(record["id"])
                continue
            records[record["id"]] = record
        if others - records.keys():
            log.warning("%s: %d items stored under other weights or settings are sampled again", self.path,
                        len(others - records.keys()))
        return records

    def resume(self, items: Sequence[BenchmarkItem]) -> ResumePlan:
        """The unfinished items of `items`, split by whether their responses are stored."""
        stored = self.load()
        todo = [item for item in items if not stored.get(item.id, {}).get("complete", False)]
        return ResumePlan(
            regrade=tuple(Generation(item, tuple(stored[item.id]["responses"])) for item in todo if item.id in stored),
            fresh=tuple(item for item in todo if item.id not in stored))

    def results(self, items: Sequence[BenchmarkItem]) -> GradedRecords:
        """The stored records of `items`, which must all have one."""
        stored = self.load()
        return GradedRecords.of({item.id: stored[item.id] for item in items})

    def append(self, records: Iterable[dict]) -> None:
        """Adds one line per record (none: the file is left as it is)."""
        stamp = {} if self.key is None else {"key": self.key}
        lines = "".join(json.dumps({**r, **stamp}, ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._torn():
            lines = "\n" + lines  # end the torn line, so it stays apart from the new records
        with writing(self.path), open_append(self.path) as f:
            f.write(lines)
            f.flush()

    def _torn(self) -> bool:
        """Whether the file ends inside a line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as f:
            f.seek(-1, 2)
            return f.read(1) != b"\n"


def sample_records(graded: Sequence[GradedGeneration]) -> list[dict]:
    """One record per item from its graded responses."""
    return [{
        "id": g.item.id,
        "responses": list(g.responses),
        "grades": [grade.details for grade in g.grades],
        "rewards": [grade.reward if grade.result is not None else None for grade in g.grades],
        "complete": all(grade.complete for grade in g.grades),
    } for g in graded]


def skipped_record(item_id: str, reason: str) -> dict:
    """The record of an item that is not sampled (its prompt is too long)."""
    return {"id": item_id, "complete": True, "skipped": reason}
