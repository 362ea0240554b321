"""herl_jax.cli_errors on real exceptions: which are the user's (one line) and which are bugs (re-raised)."""

from __future__ import annotations

import importlib

import pytest

from herl_jax.cli_errors import classify, run_cli
from herl_jax.errors import UserError

# (module, class, the builtin base its callers may catch) of each input error the CLIs report in one line
INPUT_ERRORS = (
    ("herl_jax.training.run_config", "ConfigError", ValueError),
    ("herl_jax.data.stats", "DataError", ValueError),
    ("herl_jax.evaluation.config", "EvalConfigError", ValueError),
    ("herl_jax.models", "ModelFileError", ValueError),
    ("herl_jax.models", "UnsupportedModelError", ValueError),
    ("herl_jax.training.checkpoints", "CheckpointError", RuntimeError),
    ("herl_jax.parallel.config", "MeshError", ValueError),
    ("herl_jax.training.run_outcome", "FailedRunError", RuntimeError),
    ("herl_jax.workdir_lock", "WorkdirLockError", RuntimeError),
)


@pytest.mark.parametrize("module,name,builtin", INPUT_ERRORS, ids=[name for _, name, _ in INPUT_ERRORS])
def test_every_input_error_is_a_user_error_in_one_line_and_keeps_its_builtin_base(module, name, builtin):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, UserError) and issubclass(cls, builtin)
    assert classify(cls("a bad input\n  named here")) == (1, "a bad input named here")


def test_a_halted_run_is_one_line_naming_its_step():
    from herl_jax.training.run_health import TrainingHalted

    assert issubclass(TrainingHalted, UserError) and issubclass(TrainingHalted, RuntimeError)
    assert classify(TrainingHalted(4, "not learning\n  at all")) == (1, "step 4: not learning at all")


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
