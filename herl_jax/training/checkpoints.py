"""Training checkpoints with orbax: the train state (params, optimizer state, step) plus a JSON record of
the host state (data position, seeds), saved asynchronously, keeping the newest `keep`.

Restoring walks back from the newest step: a checkpoint that fails to read (a run killed mid-write, a
corrupt file) is skipped with a warning and the one before it is used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """No checkpoint in a directory that holds some can be read: resuming would silently start over."""


class Checkpointer:
    """Saves and restores (train state, host metadata) pairs under `directory`."""

    def __init__(self, directory: str | Path, keep: int = 3, async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any, metadata: dict) -> None:
        """Starts saving `state` (any pytree of arrays) and `metadata` (JSON) as checkpoint `step`."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(metadata))
        self._manager.save(step, args=args, force=True)

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

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
            try:
                restored = self._manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore()))
            except Exception as e:  # orbax raises many types for unreadable or partial checkpoints
                log.warning("checkpoint %d in %s is unreadable (%s: %s); trying the previous one",
                            step, self.directory, type(e).__name__, e)
                unreadable.append(step)
                continue
            self._set_aside(unreadable)
            return step, restored["state"], dict(restored["metadata"])
        if unreadable:
            raise CheckpointError(
                f"none of the checkpoints {unreadable} in {self.directory} can be read (see the warnings "
                "above); move them away to start this run over, or use another workdir")
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

    def close(self) -> None:
        self.wait()
        self._manager.close()
