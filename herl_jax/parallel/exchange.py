"""Exchanging host values (prompt lists, scored groups) between the processes of a multi-process run.

Each process does the host work for its own share of a step's data (see herl_jax.step.rl_step);
these collectives let every process see what the others made of theirs, and `joint_pieces` joins their
shares into the batches of a call they make together. With one process they return at once, without
touching JAX's distributed runtime.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Generic, Sequence, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils

T = TypeVar("T")


def allgather_objects(value: T) -> list[T]:
    """Every process's `value` (any picklable object), in process order; the same list on every process.

    A collective: every process must call it, the same number of times, in the same order. The values
    travel pickled as bytes through JAX's all-gather, so they come only from this run's own processes."""
    if jax.process_count() == 1:
        return [value]
    payload = np.frombuffer(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([payload.size], np.int32))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: payload.size] = payload
    gathered = np.asarray(multihost_utils.process_allgather(padded))  # [processes, longest payload]
    return [pickle.loads(row[:size].tobytes()) for row, size in zip(gathered, sizes)]


def my_share(items: Sequence[T]) -> list[T]:
    """This process's part of a sequence that every process holds: items process_index, + process_count, ..."""
    return list(items[jax.process_index()::jax.process_count()])



@dataclasses.dataclass(frozen=True)
class JointPiece(Generic[T]):
    """One piece of a call that every process makes together (one SPMD call on the mesh).

    items: every process's items of this piece, joined in process order (the call's batch);
    start, stop: where this process's own items lie in ``items``;
    first: the index of the first of them in this process's own list."""

    items: list[T]
    start: int
    stop: int
    first: int


def joint_pieces(items: Sequence[T], chunks: int) -> list[JointPiece[T]]:
    """Cuts every process's ``items`` into the same number of consecutive pieces (``chunks``, or fewer when
    the longest list is shorter; none when all are empty) and joins each piece across the processes.

    A collective: every process calls it, even with no items, and gets the same number of pieces, so that
    each takes part in every joint call (an SPMD call waits for all processes). With one process: ``items``
    in consecutive pieces, all its own."""
    everyone = allgather_objects(list(items))
    me = jax.process_index()
    count = min(chunks, max(len(p) for p in everyone))
    bounds = [np.linspace(0, len(p), count + 1).round().astype(int) for p in everyone]
    pieces = []
    for k in range(count):
        parts = [p[b[k] : b[k + 1]] for p, b in zip(everyone, bounds)]
        start = sum(len(part) for part in parts[:me])
        joined = [x for part in parts for x in part]
        pieces.append(JointPiece(joined, start, start + len(parts[me]), int(bounds[me][k])))
    return pieces
