"""Metrics out: TensorBoard event files (tensorboardX, no TensorFlow) and a JSONL copy, one line a step."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping


class MetricsWriter:
    """Writes scalar metrics under `directory` (tensorboard/ and metrics.jsonl); only call it on process 0."""

    def __init__(self, directory: str | Path, run_name: str = "train"):
        from tensorboardX import SummaryWriter

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._tb = SummaryWriter(str(self.directory / "tensorboard" / run_name))
        self._jsonl = open(self.directory / "metrics.jsonl", "a")

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
