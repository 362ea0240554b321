"""herl_jax.cli_errors on real exceptions: which are the user's (one line) and which are bugs (re-raised)."""

from __future__ import annotations

import importlib

import pytest

from herl_jax.cli_errors import PROJECT_ERRORS, classify, project_error_types, run_cli


def test_every_listed_project_error_exists():
    for module, name in PROJECT_ERRORS:
        importlib.import_module(module)
    assert len(project_error_types()) == len(PROJECT_ERRORS)  # a rename would drop one silently


def test_a_full_disk_names_the_file_being_written():
    with pytest.raises(OSError) as error:
        with open("/dev/full", "w") as f:  # every write: ENOSPC
            f.write("x")
            f.flush()
    assert classify(error.value) == (1, "no space left on device while writing /dev/full")


def test_a_full_disk_deep_in_a_chain_is_found():
    try:
        try:
            with open("/dev/full", "wb", buffering=0) as f:
                f.write(b"x")
        except OSError as e:
            raise RuntimeError("the checkpointer failed") from e
    except RuntimeError as e:
        code, message = classify(e)
    assert code == 1 and message.startswith("no space left on device while writing /dev/full")


def test_a_path_error_names_the_path(tmp_path):
    with pytest.raises(OSError) as error:
        (tmp_path / "missing" / "x.json").read_text()
    assert classify(error.value) == (1, f"no such file or directory: {tmp_path / 'missing' / 'x.json'}")


def test_bugs_are_re_raised_unchanged():
    def buggy():
        return {}["key"]

    with pytest.raises(KeyError):
        run_cli(buggy)
    assert classify(ValueError("a bare ValueError")) == (None, "")


def test_the_exit_status_is_the_entry_points():
    with pytest.raises(SystemExit) as done:
        run_cli(lambda: 3)
    assert done.value.code == 3
