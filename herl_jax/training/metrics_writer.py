"""Metrics out: TensorBoard event files (tensorboardX, no TensorFlow) and a JSONL copy, one line a step."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

from herl_jax.own_files import child, open_append, refuse_link, write_file

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    """Writes scalar metrics under `directory` (tensorboard/ and metrics.jsonl); only call it on process 0."""

    def __init__(self, directory: str | Path, run_name: str = "train", resume_step: int | None = None):
        """`resume_step`: the run starts from this step (0: from scratch; None: append, whatever is there), so
        what an earlier attempt logged after it (steps redone now; every step when it crashed before its first
        checkpoint) is dropped from metrics.jsonl and hidden in TensorBoard (its purge_step)."""
        from tensorboardX import SummaryWriter

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / METRICS_FILE
        refuse_link(path)  # before reading it: the run's own metrics, not a file it points at
        earlier_attempt = resume_step is not None and path.exists()
        if earlier_attempt:
            _drop_lines_after(path, resume_step)
        purge_step = resume_step + 1 if earlier_attempt else None
        runs = child(self.directory / "tensorboard", run_name, "trainer.run_name")
        self._tb = SummaryWriter(str(runs), purge_step=purge_step)
        self._jsonl = open_append(path)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Logs `metrics` (name -> number; names may hold "/" groups) at `step`."""
        finite = {k: float(v) for k, v in metrics.items() if v is not None}
        for name, value in finite.items():
            if math.isfinite(value):
                self._tb.add_scalar(name, value, step)
        self._jsonl.write(json.dumps({"step": step, **finite}) + "\n")
        self._jsonl.flush()
        self._tb.flush()

    def close(self) -> None:
        self._tb.close()
        self._jsonl.close()


def _drop_lines_after(path: Path, step: int) -> None:
    """Rewrites a metrics.jsonl without the lines past `step` (or torn by a kill mid-write)."""
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    write_file(path, "".join(kept))
