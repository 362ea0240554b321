"""On-disk cache of judge verdicts (SQLite), so a rerun or a resumed run never pays for one twice.

The key is a SHA-256 of (judge model, prompt, response, rubric item text); the value is met or not.
Only answered judgements are stored: a failed call is retried by the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Mapping


def judgement_key(model: str, prompt: str, response: str, item: str) -> str:
    payload = json.dumps([model, prompt, response, item], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, met INTEGER NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, bool]:
        keys = list(keys)
        found: dict[str, bool] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, met FROM judgements WHERE key IN ({marks})", chunk)
                found.update((key, bool(met)) for key, met in rows)
        return found

    def put_many(self, verdicts: Mapping[str, bool]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO judgements (key, met) VALUES (?, ?)",
                [(key, int(met)) for key, met in verdicts.items()],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
