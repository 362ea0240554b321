"""Files a run writes in its workdir or output folder are its own: a symbolic link planted there is never
followed, so whoever can write to a shared folder cannot make a run overwrite a file elsewhere.

`write_file` writes a new file beside the target (O_EXCL | O_NOFOLLOW) and renames it over the target (a rename
replaces the link itself, never what it points at); `open_append` opens with O_NOFOLLOW. A target that is a
symbolic link is refused in one line (LinkedFileError) rather than replaced, since the run did not make it.
`child` builds a path from a user's label (a run name, a checkpoint label) that stays inside its folder.
`writing(path)` names the file in an error a write raises without naming it (a full disk while writing or
flushing an open file, or a library's own error for one), so the CLI's one line names the file, not a folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import IO, Iterator

from herl_jax.errors import UserError


class LinkedFileError(UserError, OSError):
    """A file the run writes is a symbolic link, or a label would put a path outside its folder. One line."""


def write_file(path: str | Path, data: str | bytes) -> None:
    """Replaces `path` with `data` (text as UTF-8) without following a link at `path` or writing through one."""
    path = Path(path)
    refuse_link(path)
    partial = path.with_name(f"{path.name}.{secrets.token_hex(6)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with writing(path), os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def open_append(path: str | Path) -> IO[str]:
    """`path` opened to append text (created when absent); a link at `path` is refused, not followed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _linked(Path(path)) from None
        raise
    return os.fdopen(fd, "a", encoding="utf-8")


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """In the block, an OSError that names no file is raised again naming `path`, and another error whose
    text says the disk is full (safetensors' SafetensorError) as that OSError (ENOSPC) naming `path`."""
    try:
        yield
    except OSError as e:
        if e.filename is not None or not e.errno:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e
    except Exception as e:
        if _NO_SPACE not in str(e):
            raise
        raise OSError(errno.ENOSPC, _NO_SPACE, str(path)) from e


_NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device", as the C libraries of other languages say it


def refuse_link(path: str | Path) -> None:
    """Raises LinkedFileError when `path` is a symbolic link."""
    if os.path.islink(path):
        raise _linked(Path(path))


def child(folder: str | Path, name: str, what: str) -> Path:
    """folder/name, refused (naming `what`) unless `name` is one plain path component: no "/", ".." or "."."""
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise LinkedFileError(f"{what} {name!r} is not a plain name (no '/', '.' or '..'): it names a folder "
                              f"inside {folder}")
    return Path(folder) / name


def _linked(path: Path) -> LinkedFileError:
    return LinkedFileError(f"{path} is a symbolic link (to {os.readlink(path)}), which this run did not make: "
                           "refusing to write through it; remove it or use another folder")
