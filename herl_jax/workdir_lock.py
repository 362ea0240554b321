"""One run per workdir: a lock file that names its holder, so a second trainer refuses instead of interleaving.
(`herl_jax.evaluate` holds one on its output folder too, under another file name: EVALUATE_LOCK_NAME.)

WORKDIR/herl.lock is created with O_EXCL and held with `fcntl.flock` for the life of the run; it records
the holder's host, pid and start time (JSON). The kernel drops the flock when the holder dies however it
dies (kill -9 included), so on this host a lock file whose flock is free was left by a dead run and is
taken over with a warning. A lock written on another host is refused whatever its flock says (its holder
cannot be checked from here): the message names that host and the file to delete once that run is gone.
A lock file that is a symbolic link is refused, never opened through (O_NOFOLLOW): taking it over would
truncate whatever file it points at.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from herl_jax.errors import UserError

log = logging.getLogger(__name__)

LOCK_NAME = "herl.lock"
EVALUATE_LOCK_NAME = "evaluate.lock"  # not herl.lock: the report takes a folder with herl.lock for a training run
_ATTEMPTS = 5  # a lock file released or replaced while we looked at it: look again


class WorkdirLockError(UserError, RuntimeError):
    """The workdir cannot be had: another run holds it (named), or the lock file cannot be made. One line."""


class WorkdirLock:
    """`with WorkdirLock(workdir): ...`, or `acquire()` ... `release()`; released at interpreter exit too.

    name: the lock file's name in `workdir`; what: the folder's name in messages ("workdir", "output folder").
    """

    def __init__(self, workdir: str | Path, name: str = LOCK_NAME, what: str = "workdir"):
        self.path = Path(workdir) / name
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> WorkdirLock:
        """Takes the lock, or raises WorkdirLockError naming the run that holds it."""
        if self._fd is not None:
            return self
        for _ in range(_ATTEMPTS):
            fd = self._create() or self._take_over()
            if fd is not None:
                self._fd = fd
                self._write_holder()
                atexit.register(self.release)
                return self
        raise WorkdirLockError(f"{self.path}: the lock file kept changing while it was being taken; try again")

    def release(self) -> None:
        """Removes the lock file, then lets go of the flock (so no one can take a file that is going away)."""
        if self._fd is None:
            return
        atexit.unregister(self.release)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    # ------------------------------------------------------------------------------------------ steps
    def _create(self) -> int | None:
        """A new lock file, flocked; None when one exists already."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return None
        except OSError as e:
            raise WorkdirLockError(f"cannot create the lock file {self.path}: {e.strerror}") from None
        if _try_flock(fd):
            return fd
        os.close(fd)  # someone took it over between our create and our flock: they hold it now
        raise WorkdirLockError(self._in_use_message(_read_holder(self.path)))

    def _take_over(self) -> int | None:
        """The existing lock file, flocked, when its holder is gone; None when it vanished (look again)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise WorkdirLockError(f"the lock file {self.path} is a symbolic link (to {os.readlink(self.path)}), "
                                   f"which no run makes: remove it or use another {self.what}") from None
        holder = _read_holder(self.path)
        if holder.get("host", socket.gethostname()) != socket.gethostname():
            os.close(fd)
            raise WorkdirLockError(self._in_use_message(holder))
        if not _try_flock(fd):
            os.close(fd)
            raise WorkdirLockError(self._in_use_message(_read_holder(self.path) or holder))
        if not _same_file(fd, self.path):  # released (unlinked) or replaced after we opened it
            os.close(fd)
            return None
        holder = _read_holder(self.path)
        log.warning("%s was left by %s, which is no longer running: taking the %s over",
                    self.path, _describe(holder) if holder else "a run that did not finish writing it", self.what)
        return fd

    def _write_holder(self) -> None:
        record = {"host": socket.gethostname(), "pid": os.getpid(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(self._fd)

    def _in_use_message(self, holder: dict) -> str:
        folder = self.path.parent
        if not holder:
            return f"{self.what} {folder} is in use by another run that is starting (lock file {self.path})"
        here = holder.get("host") == socket.gethostname()
        advice = (f"stop that run or use another {self.what}" if here else
                  f"stop that run, or delete {self.path} if it is no longer running")
        return f"{self.what} {folder} is in use by {_describe(holder)} (lock file {self.path}): {advice}"


def lock_holder(folder: str | Path, name: str = LOCK_NAME) -> dict | None:
    """The holder record of FOLDER/NAME while a run holds it, read as `WorkdirLock` decides it, without
    touching the lock: a lock file from another host is held (its holder cannot be checked from here); on
    this host it is held while some process holds its flock (the kernel's table, /proc/locks), whatever
    became of the pid it records. Where the kernel's table cannot be read, a live recorded pid counts."""
    path = Path(folder) / name
    holder = _read_holder(path)
    if not holder:
        return None
    if holder.get("host") != socket.gethostname():
        return holder
    flocked = _flocked(path)
    if flocked is None:
        flocked = _alive(holder.get("pid"))
    return holder if flocked else None


def _flocked(path: Path) -> bool | None:
    """Whether some process holds a flock on `path`, from /proc/locks; None when that cannot be read."""
    try:
        stat = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    return any(fields[1] == "FLOCK" and wanted in fields for fields in map(str.split, table.splitlines())
               if len(fields) > 5)


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def _read_holder(path: Path) -> dict:
    """The holder record, or {} when the file is gone, empty (being written) or not ours."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"(started {holder.get('started', '?')})")
