"""The Checkpointer on a real orbax directory: round trip, fallback past a corrupt newest checkpoint (junk
files, or one flipped byte that only the checksums see), a clear error when no checkpoint can be read, and
one clear error for a full disk (a real tmpfs)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from herl_jax.training.checkpoints import CHECKSUM_FILE, CheckpointError, Checkpointer
from tests.training.tmpfs import mounted_tmpfs


def _state(value: float):
    return {"w": jnp.full((3, 4), value, jnp.float32), "step": jnp.asarray(int(value), jnp.int32)}


def _corrupt(step_dir: Path) -> None:
    """Overwrites every stored array file of one checkpoint with junk."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and not p.name.startswith("_")]
    assert files
    for path in files:
        path.write_bytes(b"\x00junk")


def _save_steps(directory: Path, steps) -> None:
    saver = Checkpointer(directory, keep=5, async_save=False)
    for step in steps:
        saver.save(step, _state(step), {"data": step})
    saver.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_restore_skips_a_corrupt_newest_checkpoint(tmp_path):
    _save_steps(tmp_path, [1, 2])
    _corrupt(tmp_path / "2")
    reader = Checkpointer(tmp_path, keep=5)
    step, state, metadata = reader.restore_latest(_state(0.0))
    reader.close()
    assert step == 1 and metadata == {"data": 1}
    np.testing.assert_array_equal(np.asarray(state["w"]), np.full((3, 4), 1.0, np.float32))
    assert (tmp_path / "2.unreadable").is_dir()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    _save_steps(tmp_path, [1])
    _corrupt(tmp_path / "1")
    reader = Checkpointer(tmp_path, keep=5)
    with pytest.raises(CheckpointError, match=r"none of the checkpoints \[1\]"):
        reader.restore_latest(_state(0.0))
    reader.close()
    assert (tmp_path / "1").is_dir()  # left in place for a person to look at


def test_empty_directory_restores_nothing(tmp_path):
    reader = Checkpointer(tmp_path / "fresh", keep=2)
    assert reader.restore_latest(_state(0.0)) is None
    reader.close()


def _random_state(seed: int, size: int):
    """Incompressible values: a flipped byte lands in real data, and a tmpfs fills as planned."""
    values = np.random.default_rng(seed).standard_normal(size, dtype=np.float32)
    return {"w": jnp.asarray(values), "step": jnp.asarray(seed, jnp.int32)}


def _data_files(step_dir: Path) -> list[Path]:
    """The array data files of a checkpoint (orbax's OCDBT `d/` files), largest first."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def test_checksums_are_written_after_an_async_save_and_cover_every_file(tmp_path):
    saver = Checkpointer(tmp_path, keep=5, async_save=True)
    saver.save(1, _random_state(1, 10_000), {"data": 1})
    saver.close()
    record = json.loads((tmp_path / "1" / CHECKSUM_FILE).read_text())
    files = {p.relative_to(tmp_path / "1").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (tmp_path / "1").rglob("*") if p.is_file() and p.name != CHECKSUM_FILE}
    assert record["algorithm"] == "sha256" and record["files"] == files
    assert any(name.startswith("state/") and "/d/" in name for name in files)


def test_a_flipped_byte_in_the_newest_checkpoint_sets_it_aside(tmp_path, caplog):
    saver = Checkpointer(tmp_path, keep=5, async_save=True)
    saver.save(1, _random_state(1, 10_000), {"data": 1})
    saver.save(2, _random_state(2, 10_000), {"data": 2})
    saver.close()
    data_file = _data_files(tmp_path / "2")[0]
    content = bytearray(data_file.read_bytes())
    content[len(content) // 2] ^= 0x01  # one bit, in the middle of the array bytes
    data_file.write_bytes(bytes(content))

    caplog.set_level(logging.WARNING)
    reader = Checkpointer(tmp_path, keep=5)
    step, state, metadata = reader.restore_latest(_random_state(0, 10_000))
    reader.close()
    assert step == 1 and metadata == {"data": 1}
    np.testing.assert_array_equal(np.asarray(state["w"]), np.asarray(_random_state(1, 10_000)["w"]))
    assert (tmp_path / "2.unreadable").is_dir() and not (tmp_path / "2").exists()
    assert any("checkpoint 2" in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("async_save, keep", [(True, 5), (False, 5), (True, 1)])
def test_a_full_disk_is_one_clear_error_naming_the_intact_checkpoint(tmp_path, caplog, async_save, keep):
    with mounted_tmpfs(tmp_path / "small", "3m") as disk:
        directory = disk / "checkpoints"
        saver = Checkpointer(directory, keep=keep, async_save=async_save)
        saver.save(1, _random_state(1, 1_000), {"data": 1})
        saver.wait()
        filler = disk / "filler"
        with filler.open("wb") as f:  # leave about 100 KB: far less than checkpoint 2 needs
            f.write(b"\0" * (3 * 2**20 - 100 * 2**10 - sum(p.stat().st_size for p in disk.rglob("*") if p.is_file())))
        caplog.set_level(logging.INFO)
        with pytest.raises(CheckpointError) as failed:
            saver.save(2, _random_state(2, 1_000_000), {"data": 2})  # 4 MB of incompressible floats
            saver.wait()  # an asynchronous save fails here
        saver.close()
        assert str(failed.value) == (f"no space left on device while saving checkpoint 2 to {directory}; "
                                     "checkpoint 1 is intact")
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback per orbax thread
        assert not list(directory.glob("2.orbax-checkpoint-tmp*"))  # the partial save is gone

        filler.unlink()
        reader = Checkpointer(directory, keep=5)
        step, state, _ = reader.restore_latest(_random_state(0, 1_000))
        reader.close()
        assert step == 1
        np.testing.assert_array_equal(np.asarray(state["w"]), np.asarray(_random_state(1, 1_000)["w"]))


def test_the_checksums_of_an_async_save_are_on_disk_before_the_next_save(tmp_path):
    """A run killed between two saves (the common crash) must leave its newest checkpoint verifiable: the
    checksums follow the save by themselves, without another save or close() to trigger them."""
    saver = Checkpointer(tmp_path, keep=5, async_save=True)
    try:
        saver.save(1, _random_state(1, 10_000), {"data": 1})
        record, deadline = tmp_path / "1" / CHECKSUM_FILE, time.monotonic() + 60
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert record.exists(), "no checksums 60 s after the save"
        files = {p.relative_to(tmp_path / "1").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in (tmp_path / "1").rglob("*") if p.is_file() and p.name != CHECKSUM_FILE}
        assert json.loads(record.read_text())["files"] == files
    finally:
        saver.close()
