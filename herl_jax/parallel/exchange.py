"""Exchanging host values (prompt lists, scored groups) between the processes of a multi-process run.

Each process does the host work for its own share of a step's data (see herl_jax.training.experience);
these collectives let every process see what the others made of theirs. With one process they return at
once, without touching JAX's distributed runtime.
"""

from __future__ import annotations

import pickle
from typing import Sequence, TypeVar

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

