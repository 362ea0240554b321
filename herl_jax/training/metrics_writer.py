"""Metrics out: TensorBoard event files (tensorboardX, no TensorFlow) and a JSONL copy, one line a step; the
samples log (step/group_samples.py's rows) as samples.jsonl, one line a group, and as TensorBoard text."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from herl_jax.own_files import child, open_append, refuse_link, write_file
from herl_jax.training.samples_view import to_markdown

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"


class MetricsWriter:
    """Writes scalar metrics and samples under `directory` (tensorboard/, metrics.jsonl, samples.jsonl); only
    call it on process 0."""

    def __init__(self, directory: str | Path, run_name: str = "train", resume_step: int | None = None):
        """`resume_step`: the run starts from this step (0: from scratch; None: append, whatever is there), so
        what an earlier attempt logged after it (steps redone now; every step when it crashed before its first
        checkpoint) is dropped from metrics.jsonl and samples.jsonl and hidden in TensorBoard (its purge_step)."""
        from tensorboardX import SummaryWriter

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        path, self._samples_path = self.directory / METRICS_FILE, self.directory / SAMPLES_FILE
        earlier_attempt = resume_step is not None and path.exists()
        for log in (path, self._samples_path):
            refuse_link(log)  # before reading it: the run's own log, not a file it points at
            if resume_step is not None and log.exists():
                _drop_lines_after(log, resume_step)
        purge_step = resume_step + 1 if earlier_attempt else None
        runs = child(self.directory / "tensorboard", run_name, "trainer.run_name")
        self._tb = SummaryWriter(str(runs), purge_step=purge_step)
        self._jsonl = open_append(path)
        self._samples = None  # samples.jsonl, opened at the first samples written

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Logs `metrics` (name -> number; names may hold "/" groups) at `step`."""
        finite = {k: float(v) for k, v in metrics.items() if v is not None}
        for name, value in finite.items():
            if math.isfinite(value):
                self._tb.add_scalar(name, value, step)
        self._jsonl.write(json.dumps({"step": step, **finite}) + "\n")
        self._jsonl.flush()
        self._tb.flush()

    def write_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Logs step `step`'s samples-log rows: one line each in samples.jsonl, and one Markdown text in
        TensorBoard (tag "samples")."""
        if not rows:
            return
        if self._samples is None:
            self._samples = open_append(self._samples_path)
        self._samples.write("".join(json.dumps(row) + "\n" for row in rows))
        self._samples.flush()
        self._tb.add_text("samples", to_markdown(rows), step)
        self._tb.flush()

    def close(self) -> None:
        self._tb.close()
        self._jsonl.close()
        if self._samples is not None:
            self._samples.close()


def _drop_lines_after(path: Path, step: int) -> None:
    """Rewrites a metrics.jsonl or samples.jsonl without the lines past `step` (or torn by a kill mid-write)."""
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    write_file(path, "".join(kept))
