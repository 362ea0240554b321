"""Reading what a run leaves in its workdir: metrics, TensorBoard scalars, checkpoints, parameters."""

from __future__ import annotations

import json
import logging
import math
import struct
from pathlib import Path

import jax
import numpy as np

# Present at every step of a run with an update (the step's trainable groups are never empty here).
STEP_KEYS = (
    "reward/mean", "reward/max", "reward/success_rate", "revision/rate", "revision/gain", "revision/bonus",
    "revision/success_rate", "revision/improved",
    "groups/zero_variance", "groups/skipped", "samples/dropped", "train/loss", "train/pg_loss", "train/kl",
    "train/entropy", "train/clip_frac", "train/grad_norm", "time/sample", "time/score", "time/update",
    "time/step", "perf/train_tokens_per_s", "perf/sample_tokens_per_s",
)
VALIDATION_KEYS = ("validation/reward_mean", "validation/success_rate", "validation/dropped")


def read_metrics(workdir: Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_step_metrics(lines: list[dict], steps: list[int]) -> None:
    assert [m["step"] for m in lines] == steps
    for m in lines:
        missing = [k for k in STEP_KEYS if k not in m]
        assert not missing, f"step {m['step']} lacks {missing}"
        for key in ("reward/mean", "reward/max", "reward/success_rate"):
            assert math.isfinite(m[key]) and 0.0 <= m[key] <= 1.0, (key, m[key])
        for key in ("revision/success_rate", "revision/improved"):  # shares of the revised groups: NaN if none
            assert (0.0 <= m[key] <= 1.0) if m["revision/rate"] > 0 else math.isnan(m[key]), (key, m)
        assert math.isfinite(m["train/loss"]) and math.isfinite(m["train/grad_norm"])
        assert m["time/step"] >= m["time/update"] >= 0


def _events(directory: Path):
    """The events of every file under `directory`, oldest file first (TFRecord framing, read by hand)."""
    from tensorboardX.proto import event_pb2

    for path in sorted(Path(directory).rglob("events.out.tfevents.*"), key=lambda p: int(p.name.split(".")[3])):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            yield event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4  # length, its crc, the record, its crc


def purge_steps(directory: Path) -> list[int]:
    """Steps of the session START events: TensorBoard hides earlier values at or past each."""
    from tensorboardX.proto import event_pb2

    return [e.step for e in _events(directory)
            if e.HasField("session_log") and e.session_log.status == event_pb2.SessionLog.START]


def tensorboard_scalars(directory: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} as TensorBoard shows it: a session START event at step s hides the values logged
    before it at steps >= s (TensorBoard's purge)."""
    return _tensorboard_values(directory, "simple_value", lambda value: value.simple_value)


def tensorboard_texts(directory: Path) -> dict[str, dict[int, str]]:
    """tag -> {step: text} of the text summaries, as TensorBoard shows them (purged as the scalars)."""
    return _tensorboard_values(directory, "tensor", lambda value: value.tensor.string_val[0].decode())


def _tensorboard_values(directory: Path, kind: str, read) -> dict[str, dict]:
    from tensorboardX.proto import event_pb2

    values_of: dict[str, dict] = {}
    for event in _events(directory):
        if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
            for values in values_of.values():
                for step in [s for s in values if s >= event.step]:
                    del values[step]
        for value in event.summary.value:
            if value.WhichOneof("value") == kind:
                values_of.setdefault(value.tag, {})[event.step] = read(value)
    return values_of


def checkpoint_steps(workdir: Path) -> list[int]:
    """Steps of the committed checkpoints (orbax writes numbered directories)."""
    directory = Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.exists() else []


def leaves(tree) -> list[np.ndarray]:
    return [np.array(x) for x in jax.tree.leaves(tree)]


def assert_trees_equal(a, b) -> None:
    la, lb = jax.tree.leaves_with_path(a), jax.tree.leaves_with_path(b)
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        assert np.array_equal(np.asarray(x), np.asarray(y)), f"differs at {jax.tree_util.keystr(path)}"


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [p for p in Path(root).rglob("*") if p.is_file() and data in p.read_bytes()]


class LogRecorder(logging.Handler):
    """Collects the formatted records of every logger while installed (at INFO, like the CLI)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))

    def __enter__(self):
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
