"""Fixtures of the CLI tests: the trainer tests' tiny model, data and shared compilation cache, and real
file systems for the faults a path can have (read-only, full) where this machine lets a test mount one."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.trainer import conftest as trainer_fixtures

# The trainer tests' fixtures, shared here: the tiny model and data, and their XLA compilation cache.
compile_cache = trainer_fixtures.compile_cache
subprocess_env = trainer_fixtures.subprocess_env
tiny_checkpoint = trainer_fixtures.tiny_checkpoint
hir_files = trainer_fixtures.hir_files


def _mount_tmpfs(directory: Path, options: str) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@contextlib.contextmanager
def read_only(directory: Path):
    """Makes `directory` (created) one nobody may write in for the block: a read-only tmpfs mounted on it as
    root (root ignores permission bits), else no write permission."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        _mount_tmpfs(directory, "ro,size=64k")
        try:
            yield directory
        finally:
            subprocess.run(["umount", str(directory)], check=True)
    else:
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(0o755)


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write in (`read_only`)."""
    with read_only(tmp_path / "read_only") as directory:
        yield directory


@pytest.fixture
def full_dir(tmp_path):
    """A directory on a real, full file system: a 16 KiB tmpfs filled to the last byte (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    directory = tmp_path / "full"
    directory.mkdir()
    _mount_tmpfs(directory, "size=16k")
    try:
        with open(directory / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    yield directory
    subprocess.run(["umount", str(directory)], check=True)
