"""Putting host arrays on a mesh and getting arrays back: a host array every process holds turned into a
global array, and sharded arrays gathered to the host of every process.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding


def host_to_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full; each device receives only its
    shard (the full array is never on one device)."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def to_host(tree):
    """numpy copies of every array of `tree`, whole. Call it on every process: arrays sharded over several
    processes are all-gathered (a collective), others are copied from local devices."""
    if all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(tree)):
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)
