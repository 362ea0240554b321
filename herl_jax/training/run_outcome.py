"""How a run ended, as its workdir says it: WORKDIR/FINISHED (it reached `trainer.steps`; holds the step) or
WORKDIR/FAILED (it stopped as failed, run_health.py; holds the step and the reason, as JSON).

A failed run stays failed: a rerun on its workdir is refused in one line naming the step and the reason
(FailedRunError) unless told to retry (`train --retry_failed`), and the sweep and the report show it as
failed. Read by the trainer, launch/sweep.py and herl_jax.reporting; imports no JAX.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from herl_jax.errors import UserError
from herl_jax.own_files import refuse_link, write_file

FINISHED = "FINISHED"
FAILED = "FAILED"


class FailedRunError(UserError, RuntimeError):
    """A rerun of a run that stopped as failed, without --retry_failed."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """Why a run stopped as failed: the step it stopped at (numbered as in metrics.jsonl) and the reason."""

    step: int
    reason: str


def record_failure(workdir: Path, failure: Failure) -> None:
    """Writes WORKDIR/FAILED."""
    write_file(Path(workdir) / FAILED, json.dumps(dataclasses.asdict(failure)) + "\n")


def failure_of(workdir: Path) -> Failure | None:
    """The recorded failure of the run in `workdir`, or None when it has not failed. A FAILED file that is not
    our JSON (cut short by a full disk, edited) still marks the run failed, with its text as the reason."""
    path = Path(workdir) / FAILED
    refuse_link(path)  # a link planted there says nothing about this run (LinkedFileError)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        return Failure(int(record["step"]), str(record["reason"]))
    except (ValueError, KeyError, TypeError):
        return Failure(0, f"{path} is unreadable: {text.strip()[:200]!r}")


def refuse_failed(workdir: Path) -> None:
    """Raises FailedRunError when the run in `workdir` has failed."""
    failure = failure_of(workdir)
    if failure is not None:
        raise FailedRunError(
            f"{Path(workdir) / FAILED}: this run stopped as failed at step {failure.step} ({failure.reason}); "
            "rerun with --retry_failed to resume it from its newest checkpoint, or use a new workdir")


def clear_failure(workdir: Path) -> None:
    """Removes WORKDIR/FAILED (a retry that goes on): the run is unfinished again until it ends."""
    (Path(workdir) / FAILED).unlink(missing_ok=True)
