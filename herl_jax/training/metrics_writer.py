"""The run's one metrics interface, `MetricsWriter`: each logged step's scalars and, every
trainer.log_samples_every steps, its samples-log rows (step/group_samples.py) go to the run's files and to each of
its trackers:

  metrics.jsonl, samples.jsonl   the files of record (one line a step; one line a group), which the report and
                                 herl_jax.samples read; every value, NaN included
  TensorBoardLog                 WORKDIR/tensorboard/RUN_NAME (tensorboardX's record format and protocol
                                 buffers, no TensorFlow): the finite scalars, the samples as Markdown text (tag
                                 "samples"); always on
  WandbLog                       Weights & Biases, when trainer.wandb_project is set (training/wandb_log.py): the
                                 same finite scalars, the samples as a Table, the resolved config redacted

A resumed run drops what an earlier attempt logged past its checkpoint: the JSONL files' lines, TensorBoard's
values (its purge_step); W&B keeps a redone step's first values (wandb_log.py).

Every file is written in the calling thread (not by tensorboardX's SummaryWriter, whose writer thread and exit
hook print tracebacks of their own when the disk fills), so a write that fails raises here, naming the file
(own_files.writing).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import IO, Any, Mapping, Protocol, Sequence

from herl_jax.own_files import child, open_append, refuse_link, write_file, writing
from herl_jax.training.samples_view import to_markdown

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"


class Tracker(Protocol):
    """Where a run's metrics are shown besides its files (TensorBoard, W&B)."""

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """Logs finite scalars (name -> value; names may hold "/" groups) at `step`."""

    def write_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Logs step `step`'s samples-log rows (at least one)."""

    def close(self) -> None: ...


class MetricsWriter:
    """Writes a run's metrics and samples under `directory` and to its trackers; only call it on process 0."""

    def __init__(self, directory: str | Path, run_name: str = "train", resume_step: int | None = None,
                 wandb_project: str = "", config: Mapping[str, Any] | None = None):
        """`resume_step`: the run starts from this step (0: from scratch; None: append, whatever is there), so
        what an earlier attempt logged after it (steps redone now; every step when it crashed before its first
        checkpoint) is dropped from the JSONL files and hidden in TensorBoard (its purge_step). `wandb_project`:
        also log to Weights & Biases (""= not), with `config` (the resolved config, secrets redacted)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = path = self.directory / METRICS_FILE
        self._samples_path = self.directory / SAMPLES_FILE
        earlier_attempt = resume_step is not None and path.exists()
        for log in (path, self._samples_path):
            refuse_link(log)  # before reading it: the run's own log, not a file it points at
            if resume_step is not None and log.exists():
                _drop_lines_after(log, resume_step)
        self._trackers: list[Tracker] = [
            TensorBoardLog(self.directory, run_name, purge_step=resume_step + 1 if earlier_attempt else None)]
        if wandb_project:
            from herl_jax.training.wandb_log import WandbLog  # the optional extra: imported only when asked for

            self._trackers.append(WandbLog(self.directory, wandb_project, run_name, dict(config or {})))
        self._jsonl = open_append(path)
        self._samples: IO[str] | None = None  # samples.jsonl, opened at the first samples written

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Logs `metrics` (name -> number; names may hold "/" groups) at `step`: all to metrics.jsonl, the
        finite ones to the trackers."""
        values = {k: float(v) for k, v in metrics.items() if v is not None}
        with writing(self._path):
            self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
            self._jsonl.flush()
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        for tracker in self._trackers:
            tracker.write(step, finite)

    def write_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Logs step `step`'s samples-log rows: one line each in samples.jsonl, and to each tracker."""
        if not rows:
            return
        if self._samples is None:
            self._samples = open_append(self._samples_path)
        with writing(self._samples_path):
            self._samples.write("".join(json.dumps(row) + "\n" for row in rows))
            self._samples.flush()
        for tracker in self._trackers:
            tracker.write_samples(step, rows)

    def close(self) -> None:
        """Closes the trackers and the files (what is left to write was flushed by each write)."""
        try:
            for tracker in self._trackers:
                tracker.close()
        finally:
            with writing(self._path):
                self._jsonl.close()
            if self._samples is not None:
                with writing(self._samples_path):
                    self._samples.close()


class TensorBoardLog:
    """TensorBoard event files under WORKDIR/tensorboard/RUN_NAME; `purge_step` hides what an earlier attempt
    logged at or past it."""

    def __init__(self, directory: Path, run_name: str, purge_step: int | None):
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.record_writer import RecordWriter

        runs = child(directory / "tensorboard", run_name, "trainer.run_name")
        runs.mkdir(parents=True, exist_ok=True)
        # TensorBoard reads every file whose name holds "tfevents"; the pid keeps two writers apart.
        self.events = runs / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        with writing(self.events):
            self._tb = RecordWriter(str(self.events))
            self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
            if purge_step is not None:  # a restart: TensorBoard hides the values logged before it at or past it
                self._write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        from tensorboardX.summary import scalar

        self._write_summary(step, [v for name, value in scalars.items() for v in scalar(name, value).value])

    def write_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        from tensorboardX.summary import text

        self._write_summary(step, list(text("samples", to_markdown(rows)).value))

    def _write_summary(self, step: int, values: list) -> None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        self._write(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))

    def _write(self, event) -> None:
        with writing(self.events):
            self._tb.write(event.SerializeToString())
            self._tb.flush()

    def close(self) -> None:
        with writing(self.events):
            self._tb.close()


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
