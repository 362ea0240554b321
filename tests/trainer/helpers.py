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


def wandb_offline_runs(directory: Path) -> list[dict]:
    """The W&B runs that WANDB_MODE=offline left under `directory` (any depth), oldest first, each read back from
    its transaction log (run-ID.wandb: LevelDB's log framing of wandb's own Record protobufs):
    {"id", "name", "config": {key: value}, "history": {step: {key: value}}, "files": its files/ folder}."""
    from wandb.proto import wandb_internal_pb2

    runs = []
    for log in sorted(Path(directory).rglob("offline-run-*/run-*.wandb")):
        run = {"config": {}, "history": {}, "files": log.parent / "files"}
        for data in _leveldb_records(log.read_bytes()):
            record = wandb_internal_pb2.Record.FromString(data)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.update(id=record.run.run_id, name=record.run.display_name)
                updates = record.run.config.update
            elif kind == "config":
                updates = record.config.update
            elif kind == "history":
                step = {".".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
                run["history"].setdefault(record.history.step.num, {}).update(step)
                continue
            else:
                continue
            run["config"].update({u.key: json.loads(u.value_json) for u in updates})
        runs.append(run)
    return runs


def _leveldb_records(data: bytes, block: int = 32768):
    """The records of a W&B transaction log: a 7-byte header (":W&B", magic, version), then LevelDB log blocks
    of chunks (crc32c, length, type: 1 full, 2 first, 3 middle, 4 last); a block's last < 7 bytes are padding."""
    assert data[:4] == b":W&B", "not a W&B transaction log"
    offset, pending = 7, b""
    while offset + 7 <= len(data):
        if block - offset % block < 7:
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack_from("<IHB", data, offset)
        if kind == 0:
            break
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):
            yield pending
            pending = b""


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
