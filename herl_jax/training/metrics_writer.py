"""Metrics out: TensorBoard event files and a JSONL copy, one line a step.

The event file is written here, in the calling thread (tensorboardX's record format and protocol buffers, not
its SummaryWriter, whose writer thread and exit hook print tracebacks of their own when the disk fills), so a
write that fails raises here, naming the file (own_files.writing).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Mapping

from herl_jax.own_files import child, open_append, refuse_link, write_file, writing

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    """Writes scalar metrics under `directory` (tensorboard/RUN_NAME/ and metrics.jsonl); only call it on
    process 0."""

    def __init__(self, directory: str | Path, run_name: str = "train", resume_step: int | None = None):
        """`resume_step`: the run starts from this step (0: from scratch; None: append, whatever is there), so
        what an earlier attempt logged after it (steps redone now; every step when it crashed before its first
        checkpoint) is dropped from metrics.jsonl and hidden in TensorBoard (a restart at step resume_step + 1,
        which TensorBoard purges later steps at)."""
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.record_writer import RecordWriter

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jsonl = path = self.directory / METRICS_FILE
        refuse_link(path)  # before reading it: the run's own metrics, not a file it points at
        earlier_attempt = resume_step is not None and path.exists()
        if earlier_attempt:
            _drop_lines_after(path, resume_step)
        runs = child(self.directory / "tensorboard", run_name, "trainer.run_name")
        runs.mkdir(parents=True, exist_ok=True)
        # TensorBoard reads every file whose name holds "tfevents"; the pid keeps two writers apart.
        self.events = runs / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        with writing(self.events):
            self._tb = RecordWriter(str(self.events))
            self._tb.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
            if earlier_attempt:
                restart = Event(step=resume_step + 1, session_log=SessionLog(status=SessionLog.START))
                self._tb.write(restart.SerializeToString())
            self._tb.flush()
        self._jsonl = open_append(path)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Logs `metrics` (name -> number; names may hold "/" groups) at `step`."""
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary
        from tensorboardX.summary import scalar

        finite = {k: float(v) for k, v in metrics.items() if v is not None}
        values = [v for name, value in finite.items() if math.isfinite(value) for v in scalar(name, value).value]
        with writing(self.events):
            self._tb.write(Event(wall_time=time.time(), step=step, summary=Summary(value=values)).SerializeToString())
            self._tb.flush()
        with writing(self.jsonl):
            self._jsonl.write(json.dumps({"step": step, **finite}) + "\n")
            self._jsonl.flush()

    def close(self) -> None:
        """Closes both files (what is left to write was flushed by `write`)."""
        try:
            with writing(self.events):
                self._tb.close()
        finally:
            with writing(self.jsonl):
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
