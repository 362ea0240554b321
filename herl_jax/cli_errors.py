"""One line, not a traceback, for the errors a user can cause in any CLI (train, evaluate, plan, chat,
launch/sweep.py, launch/multihost.py).

`run_cli(entry)` runs a CLI's entry point and turns these exceptions into `error: MESSAGE` on stderr:

  exit 2, the command line:
    UsageError (below; a bad flag, flag value or argument, a config file that cannot be loaded: raised by
    herl_jax.cli_flags) and absl's flags.Error
  exit 1, the inputs the command line names:
    herl_jax.errors.UserError, the base of the project's input errors: herl_jax.config's ConfigError,
    herl_jax.data.DataError, herl_jax.evaluation.config.EvalConfigError, herl_jax.models' ModelFileError
    (a weight or config.json file that cannot be read) and UnsupportedModelError,
    herl_jax.training.checkpoints.CheckpointError, herl_jax.parallel's MeshError,
    herl_jax.training.run_health.TrainingHalted (a run that stopped learning),
    herl_jax.workdir_lock.WorkdirLockError (another run holds the workdir or output folder),
    herl_jax.own_files.LinkedFileError (a symbolic link where a run writes a file, or a label that is not a
    plain name)
    (launch/sweep.py reports its own SweepError the same way);
    FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError (a path given
    by the user, or one inside a workdir or model directory the user gave);
    an OSError for a read-only file system, and, anywhere in the exception's chain, a full disk or quota:
    "no space left on device while writing PATH".

Anything else is a bug and keeps its traceback. HERL_DEBUG=1 prints the traceback of a user error too.
Nothing here imports JAX (multihost must join first): herl_jax.errors imports nothing, and absl only when an
error is being classified.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import traceback
from pathlib import PurePath
from typing import Any, Callable, NoReturn

from herl_jax.errors import UserError

USAGE_EXIT, INPUT_EXIT = 2, 1
PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
PATH_ERRNOS = (errno.EROFS,)
FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class UsageError(Exception):
    """A bad command line: a flag, a flag's value or an argument, or a config file that cannot be loaded."""


def run_cli(entry: Callable[[], Any]) -> NoReturn:
    """Runs `entry()` and exits with its return value; a user error becomes one `error: ...` line."""
    try:
        result = entry()
    except Exception as e:  # noqa: BLE001 - classified below; anything else is re-raised unchanged
        exit_code, message = classify(e)
        if exit_code is None:
            raise
        if os.environ.get("HERL_DEBUG") == "1":
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(exit_code)
    sys.exit(result)


def classify(error: BaseException) -> tuple[int | None, str]:
    """(exit code, one-line message) of a user error; (None, "") for anything else. A UserError's own message
    comes first (a full disk while saving a checkpoint names the checkpoint that is intact); then a full disk
    anywhere in the chain."""
    if isinstance(error, UserError):
        return INPUT_EXIT, one_line(str(error))
    full = _full_disk(error)
    if full is not None:
        return INPUT_EXIT, full
    from absl import flags

    if isinstance(error, (UsageError, flags.Error)):
        return USAGE_EXIT, one_line(str(error))
    if isinstance(error, PATH_ERRORS) or (isinstance(error, OSError) and error.errno in PATH_ERRNOS):
        return INPUT_EXIT, _os_error_line(error)
    return None, ""


def one_line(text: str) -> str:
    """The non-empty lines of `text` joined by spaces (messages that wrap stay whole, on one line)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or "(no message)"


def _os_error_line(error: OSError) -> str:
    """"permission denied: PATH" for an OSError naming a path; its own message (ours name the path) else."""
    if error.filename is not None and error.strerror:
        return f"{error.strerror.lower()}: {error.filename}"
    return one_line(str(error))


def _full_disk(error: BaseException) -> str | None:
    """The full-disk message when a no-space OSError is anywhere in the exception's cause/context chain."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS:
            path = error.filename or _file_being_written(error.__traceback__)
            return f"no space left on device while writing {path or 'a file (HERL_DEBUG=1 shows where)'}"
        error = error.__cause__ or error.__context__
    return None


def _file_being_written(tb) -> str | None:
    """The path of the innermost frame's open file or Path (a write's OSError often names no file)."""
    frames = [frame for frame, _ in traceback.walk_tb(tb)]
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, PurePath):
                return str(value)
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
    return None
