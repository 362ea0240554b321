"""Issue 27 item 6: a full disk while a run writes any of its files (the export, metrics.jsonl, the TensorBoard
event file, an evaluation's records and report) is one line naming that file, as every CLI prints it
(herl_jax.cli_errors.classify), and no thread or exit hook prints a traceback of its own. Each on a real
tmpfs filled to the last byte (root only: tests/training/tmpfs.py says why it skips elsewhere)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest

from herl_jax.cli_errors import classify
from herl_jax.evaluation.report import write_report
from herl_jax.evaluation.store import ResultStore
from herl_jax.models import export_hf
from herl_jax.training.metrics_writer import METRICS_FILE, MetricsWriter
from tests.training.tiny import tiny_model
from tests.training.tmpfs import mounted_tmpfs


def _fill(disk: Path) -> None:
    """Writes a file on `disk` until the file system has no byte left."""
    try:
        with open(disk / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError:
        pass
    try:  # the last partial page
        with open(disk / "filler", "ab", buffering=0) as f:
            while True:
                f.write(b"\0")
    except OSError:
        pass


def _one_line(error: BaseException) -> str:
    exit_code, line = classify(error)
    assert exit_code == 1, error
    return line


def test_the_export_on_a_full_disk_names_the_file_it_was_writing(tmp_path, capfd):
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        _fill(disk)
        with pytest.raises(Exception) as failed:  # safetensors' own error class, before this fix a traceback
            export_hf(tiny_model(), disk / "export")
    assert _one_line(failed.value) == ("no space left on device while writing "
                                       f"{disk / 'export' / '.shard-00001.safetensors'}")
    assert "Traceback" not in capfd.readouterr().err


def test_the_tensorboard_file_on_a_full_disk_is_named_with_no_thread_traceback(tmp_path, capfd):
    threads_before = threading.active_count()
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        # TensorBoard's folder on a full file system of its own: metrics.jsonl beside it has room.
        with mounted_tmpfs(disk / "tensorboard", "64k") as tensorboard:
            writer = MetricsWriter(disk, resume_step=0)
            [events] = (tensorboard / "train").glob("events.out.tfevents.*")
            assert threading.active_count() == threads_before  # no writer thread of its own to die noisily
            _fill(tensorboard)
            with pytest.raises(OSError) as failed:
                for step in range(1, 10_000):  # the event file's first page has room for a few steps
                    writer.write(step, {"reward/mean": 0.5, "train/loss": 1.25})
            with pytest.raises(OSError) as closing:  # what the failed write left buffered cannot go either
                writer.close()
            del writer
            gc.collect()  # tensorboardX's SummaryWriter printed a traceback here, from its exit hook and thread
    assert _one_line(failed.value) == _one_line(closing.value) == f"no space left on device while writing {events}"
    assert "Traceback" not in capfd.readouterr().err


def test_metrics_jsonl_on_a_full_disk_is_named(tmp_path):
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        # TensorBoard's folder on a file system of its own with room: only metrics.jsonl meets the full disk.
        with mounted_tmpfs(disk / "tensorboard", "1m"):
            writer = MetricsWriter(disk, resume_step=0)
            _fill(disk)
            with pytest.raises(OSError) as failed:
                for step in range(1, 10_000):
                    writer.write(step, {"reward/mean": 0.5})
            with pytest.raises(OSError):
                writer.close()
    assert _one_line(failed.value) == f"no space left on device while writing {disk / METRICS_FILE}"


def test_evaluation_records_and_report_on_a_full_disk_are_named(tmp_path):
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        output = disk / "eval"
        output.mkdir()
        _fill(disk)
        store = ResultStore(output / "base" / "ifeval.jsonl")
        with pytest.raises(OSError) as records:
            store.append([{"id": "1", "responses": ["x" * 100], "complete": True}])
        with pytest.raises(OSError) as report:
            write_report(output)
    assert _one_line(records.value) == f"no space left on device while writing {output / 'base' / 'ifeval.jsonl'}"
    assert _one_line(report.value) == f"no space left on device while writing {output / 'results.json'}"
