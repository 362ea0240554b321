"""Training checkpoints with orbax: the train state (params, optimizer state, step) plus a JSON record of
the host state (data position, seeds), saved asynchronously, keeping the newest `keep`.

As soon as orbax has finished a save, the sha256 of every file in the checkpoint is written beside them
(`herl_sha256.json`, by a background thread that watches the save; process 0). Restoring walks back from the newest step: a
checkpoint whose files do not match their checksums (bits flipped on disk) or that fails to read (a run
killed mid-write) is set aside with a warning and the one before it is used.

A full disk while saving is one CheckpointError naming the step, the directory and the newest intact
checkpoint, instead of orbax's tracebacks from each of its threads (their log records are dropped, and so
are the "Event loop is closed" tracebacks that tensorstore prints when its writes finish after the failed
save's event loop has closed).

`read_params` reads one checkpoint's parameters alone (no optimizer state), verified against the same checksums:
the export and evaluation of any step (training/run_policy.py).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from herl_jax.errors import UserError
from herl_jax.own_files import write_file

log = logging.getLogger(__name__)

CHECKSUM_FILE = "herl_sha256.json"
STATE_ITEM = "state"  # the train state's folder in a checkpoint (beside "metadata", the host state)
_SAVE_POLL_S = 0.2  # how often the checksum thread looks whether orbax has finished a save
# orbax logs through absl; its failed save's futures, never awaited, through asyncio ("exception was never retrieved")
_ORBAX_LOGGERS = ("absl", "asyncio")
_NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device": how tensorstore's errors say it too


class CheckpointError(UserError, RuntimeError):
    """A checkpoint cannot be saved (full disk), none in a directory that holds some can be read, or the one
    asked for is missing, corrupt or unreadable."""


class Checkpointer:
    """Saves and restores (train state, host metadata) pairs under `directory`."""

    def __init__(self, directory: str | Path, keep: int = 3, async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._in_flight: int | None = None  # a step whose save may still be running
        self._checksummer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checkpoint-sha256")
        self._checksum_jobs: list[concurrent.futures.Future] = []
        self._quiet = _DropOutOfSpaceRecords()
        for logger in _ORBAX_LOGGERS:
            logging.getLogger(logger).addFilter(self._quiet)
        _drop_closed_loop_callbacks()

    def save(self, step: int, state: Any, metadata: dict) -> None:
        """Starts saving `state` (any pytree of arrays) and `metadata` (JSON) as checkpoint `step`."""
        self._finish_save()
        args = ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardSave(state)},
                                  metadata=ocp.args.JsonSave(metadata))
        with self._out_of_space_as_one_error(step):
            self._manager.save(step, args=args, force=True)
        self._in_flight = step
        if jax.process_index() == 0:  # checksummed as soon as it is on disk: a crash before the next save
            self._checksum_jobs.append(self._checksummer.submit(self._checksum_once_saved, step))  # is covered

    def wait(self) -> None:
        """Blocks until pending asynchronous saves, and their checksums, are on disk."""
        self._finish_save()
        for job in self._checksum_jobs:
            job.result()
        self._checksum_jobs.clear()

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict] | None:
        """(step, state, metadata) of the newest readable checkpoint, or None when there is none.

        abstract_state: a pytree of jax.ShapeDtypeStruct (or arrays) with the state's structure; each array
        is restored with its sharding (a sharded train state comes back sharded the same way, each process
        reading only its own shards).
        Raises CheckpointError when checkpoints exist but none of them can be read.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
        unreadable = []
        for step in reversed(self.steps()):
            restored = self._read(step, abstract)
            if restored is None:
                unreadable.append(step)
                continue
            self._set_aside(unreadable)
            return step, restored[STATE_ITEM], dict(restored["metadata"])
        if unreadable:
            raise CheckpointError(
                f"none of the checkpoints {unreadable} in {self.directory} can be read (see the warnings "
                "above); move them away to start this run over, or use another workdir")
        return None

    def _read(self, step: int, abstract: Any):
        """The restored composite of `step`, or None (with a warning) when it is corrupt or unreadable."""
        problem = checksum_problem(self.directory / str(step))
        if problem:
            log.warning("checkpoint %d in %s is corrupt (%s); trying the previous one", step, self.directory,
                        problem)
            return None
        try:
            return self._manager.restore(step, args=ocp.args.Composite(
                **{STATE_ITEM: ocp.args.StandardRestore(abstract)}, metadata=ocp.args.JsonRestore()))
        except Exception as e:  # orbax raises many types for unreadable or partial checkpoints
            log.warning("checkpoint %d in %s is unreadable (%s: %s); trying the previous one",
                        step, self.directory, type(e).__name__, e)
            return None

    def _set_aside(self, steps: list[int]) -> None:
        """Renames unreadable checkpoints newer than the restored one to STEP.unreadable (kept for a look):
        the resumed run saves those steps again, and orbax refuses to overwrite an existing step."""
        if not steps:
            return
        if jax.process_index() == 0:
            for step in steps:
                target = self.directory / f"{step}.unreadable"
                suffix = 1
                while target.exists():
                    target, suffix = self.directory / f"{step}.unreadable.{suffix}", suffix + 1
                (self.directory / str(step)).rename(target)
                log.warning("moved unreadable checkpoint %d aside to %s", step, target)
        if jax.process_count() > 1:
            ocp.multihost.sync_global_processes(f"herl_checkpoints_set_aside_{'_'.join(map(str, steps))}")
        self._manager.reload()

    def _finish_save(self) -> None:
        """Waits for the save in flight (and reports a checksum job that failed)."""
        if self._in_flight is None:
            return
        step, self._in_flight = self._in_flight, None
        with self._out_of_space_as_one_error(step):
            self._manager.wait_until_finished()
        for job in [j for j in self._checksum_jobs if j.done()]:
            job.result()
            self._checksum_jobs.remove(job)

    def _checksum_once_saved(self, step: int) -> None:
        """On the checksum thread: waits until no save is in progress (this one, or a later one started
        meanwhile), then records checkpoint `step`'s checksums, unless `keep` has already deleted it."""
        while self._manager.is_saving_in_progress():
            time.sleep(_SAVE_POLL_S)
        step_dir = self.directory / str(step)
        if step_dir.is_dir():
            write_checksums(step_dir)

    @contextlib.contextmanager
    def _out_of_space_as_one_error(self, step: int):
        try:
            yield
        except Exception as error:
            if not _out_of_space(error):
                raise
            if jax.process_index() == 0:  # the partial save: free its space, it is of no use
                for partial in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
                    shutil.rmtree(partial, ignore_errors=True)
            # From the directory, not the manager: with keep=1 orbax has already dropped the earlier step
            # from its list when the new save starts, though its folder stays on disk.
            intact = sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit() and int(p.name) < step)
            earlier = f"checkpoint {intact[-1]} is intact" if intact else "no earlier checkpoint was saved"
            raise CheckpointError(f"no space left on device while saving checkpoint {step} to {self.directory}; "
                                  f"{earlier}") from error

    def close(self) -> None:
        """Waits for the pending save, then shuts orbax down. After a failed save (a CheckpointError raised
        here or earlier), orbax's close raises the same failure again: the first error is the one reported."""
        try:
            self.wait()
        except BaseException:
            self._shut_down(quietly=True)
            raise
        self._shut_down(quietly=False)

    def _shut_down(self, quietly: bool) -> None:
        self._checksummer.shutdown()
        try:
            self._manager.close()
        except Exception:
            if not quietly:
                raise
        finally:
            for logger in _ORBAX_LOGGERS:
                logging.getLogger(logger).removeFilter(self._quiet)


def check_writable(directory: str | Path) -> None:
    """Raises OSError naming `directory` when no checkpoint can be written there (a read-only mount, no write
    permission), so a run finds out at start, not after training, when orbax would retry its save for minutes.
    A directory not made yet is made by the first save, beside the files the run has already written."""
    directory = Path(directory)
    if not os.path.lexists(directory):
        return
    probe = directory / f".herl-write-probe-{secrets.token_hex(6)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(directory)) from None
    probe.unlink()


def saved_steps(directory: Path) -> list[int]:
    """The steps of the checkpoints orbax committed in `directory` (a save in progress has another name)."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir())


def read_params(step_dir: Path, abstract_params: Any) -> Any:
    """The parameters (the train state's `params`; the optimizer state is not read) of the checkpoint in
    `step_dir`, restored as `abstract_params` gives them: its structure, and each leaf's shape, dtype (cast
    on reading) and sharding (jax.ShapeDtypeStruct). A checkpoint whose files fail their checksums, or that
    cannot be read, is refused in one CheckpointError."""
    problem = checksum_problem(step_dir)
    if problem:
        raise CheckpointError(f"checkpoint {step_dir} is corrupt ({problem}); refusing to read it")
    target = {"params": abstract_params}
    args = ocp.args.PyTreeRestore(item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
                                  partial_restore=True)
    try:
        with ocp.PyTreeCheckpointer() as checkpointer:
            return checkpointer.restore(step_dir / STATE_ITEM, args=args)["params"]
    except Exception as e:  # orbax raises many types for unreadable or partial checkpoints
        raise CheckpointError(f"checkpoint {step_dir} cannot be read ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from e


# ------------------------------------------------------------------------------------------ checksums
def _file_digests(step_dir: Path) -> dict[str, str]:
    """sha256 of each file under a checkpoint directory, by relative path; our own record left out."""
    digests = {}
    for path in sorted(step_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(CHECKSUM_FILE):
            with path.open("rb") as f:
                digests[path.relative_to(step_dir).as_posix()] = hashlib.file_digest(f, "sha256").hexdigest()
    return digests


def write_checksums(step_dir: Path) -> None:
    """Records the sha256 of every file of a finished checkpoint in STEP/herl_sha256.json (atomically)."""
    try:
        record = {"algorithm": "sha256", "files": _file_digests(step_dir)}
        write_file(step_dir / CHECKSUM_FILE, json.dumps(record, indent=1, sort_keys=True))
    except FileNotFoundError:  # deleted meanwhile by orbax's `keep` (keep=1): nothing to record
        return
    except OSError as e:
        log.warning("could not write the checksums of checkpoint %s (%s); it will be restored unverified",
                    step_dir, e.strerror or e)


def checksum_problem(step_dir: Path) -> str | None:
    """Why a checkpoint's files do not match the checksums written at save, or None when they match (or
    there are none: a checkpoint saved before checksums were written, or one the run did not get to)."""
    try:
        expected = json.loads((step_dir / CHECKSUM_FILE).read_text())["files"]
    except FileNotFoundError:
        log.warning("checkpoint %s has no %s: restoring it unverified", step_dir, CHECKSUM_FILE)
        return None
    except (ValueError, KeyError, TypeError):
        return f"its {CHECKSUM_FILE} is unreadable"
    actual = _file_digests(step_dir)
    changed = sorted(name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name))
    if changed:
        return f"{len(changed)} file(s) differ from their sha256 at save: {', '.join(changed[:3])}"
    return None


# ------------------------------------------------------------------------------------------ full disk
def _out_of_space(error: BaseException | None) -> bool:
    """Whether ENOSPC is anywhere in an error's chain (orbax wraps tensorstore's as a ValueError's text)."""
    stack, seen = [error], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or _NO_SPACE in str(e):
            return True
        stack += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return False


def _drop_closed_loop_callbacks() -> None:
    """Installs (once per process) a sys.unraisablehook that drops the RuntimeError "Event loop is closed"
    raised in asyncio's call_soon_threadsafe when tensorstore calls back, from its own threads, into the event
    loop of a save that already failed (it reports that error as unraisable, with no object); everything else
    reaches the hook it had."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_closed_loop_callbacks", False):
        return

    def hook(unraisable) -> None:
        tb = unraisable.exc_traceback
        outermost = tb.tb_frame.f_code.co_name if tb is not None else None
        if (unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed"
                and outermost == "call_soon_threadsafe"):
            return
        previous(unraisable)

    hook.drops_closed_loop_callbacks = True
    sys.unraisablehook = hook


class _DropOutOfSpaceRecords(logging.Filter):
    """Orbax logs a full disk once per thread with a traceback each; the CheckpointError says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (_out_of_space(error) or _NO_SPACE in record.getMessage())
