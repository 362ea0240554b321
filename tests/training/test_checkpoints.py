"""The Checkpointer on a real orbax directory: round trip, fallback past a corrupt newest checkpoint, and a
clear error when no checkpoint can be read."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from herl_jax.training.checkpoints import CheckpointError, Checkpointer


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
