"""Putting arrays on a mesh and getting them back: modules created or loaded directly sharded, host
batches turned into global arrays (the same batch on every process, or each process's own rows), and
sharded arrays gathered to the host of every process.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding

from herl_jax.parallel.rules import DEFAULT_RULES, Rules, logical_sharding, tree_shardings

M = TypeVar("M", bound=nnx.Module)


def create_sharded(make_module: Callable[[], M], mesh: Mesh, rules: Rules = DEFAULT_RULES) -> M:
    """`make_module()` (e.g. `lambda: Decoder(cfg, nnx.Rngs(0))`) with every array created in place on the
    mesh: the module is traced abstractly, then one jitted program writes each device's shards only."""
    graphdef, abstract = nnx.split(nnx.eval_shape(make_module))
    shardings = tree_shardings(abstract, mesh, rules)
    state = jax.jit(lambda: nnx.split(make_module())[1], out_shardings=shardings)()
    return nnx.merge(graphdef, state)


def shard_module(module: M, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> M:
    """A copy of a module whose arrays are placed on the mesh by their logical axes."""
    graphdef, state = nnx.split(module)
    return nnx.merge(graphdef, jax.device_put(state, tree_shardings(state, mesh, rules)))


def host_to_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full; each device receives only its
    shard (the full array is never on one device)."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def local_batch_to_global(local: dict[str, np.ndarray], mesh: Mesh,
                          rules: Rules = DEFAULT_RULES) -> dict[str, jax.Array]:
    """Each process's own rows [B / process_count, ...] -> global arrays [B, ...] split along rows.

    Process i's rows become rows i*b .. (i+1)*b - 1 of the global batch (meshes from `make_mesh` order the
    devices process by process). Every process must pass the same keys and per-process shapes."""
    out = {}
    for key, rows in local.items():
        rows = np.asarray(rows)
        shape = (rows.shape[0] * jax.process_count(), *rows.shape[1:])
        sharding = logical_sharding(("batch",) + (None,) * (rows.ndim - 1), shape, mesh, rules)
        out[key] = jax.make_array_from_process_local_data(sharding, rows, shape)
    return out


def to_host(tree):
    """numpy copies of every array of `tree`, whole. Call it on every process: arrays sharded over several
    processes are all-gathered (a collective), others are copied from local devices."""
    if all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(tree)):
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)
