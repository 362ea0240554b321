"""Logical-axis rules: from the names the code gives array dimensions to mesh axes.

Parameters carry logical names in their nnx metadata (`out_sharding`, see models/decoder.py), the KV
cache in `KVCache.KV_AXES` / `MASK_AXES`, batches and sampler arrays ("batch", "seq", "vocab"). A rule maps
one logical name to a mesh axis, a tuple of mesh axes, or None (replicated).

The PartitionSpec of an array is computed from its shape: a mesh axis that does not divide the dimension
(kv_heads=2 on tensor=8, a batch of 2 rows on data=8), or that an earlier dimension already uses, is
dropped, so that dimension is replicated over it instead of failing. Axes of size 1 are left out.
"""

from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx
from jax.sharding import AbstractMesh, Mesh, NamedSharding, PartitionSpec

Rules = tuple[tuple[str, "str | tuple[str, ...] | None"], ...]

DEFAULT_RULES: Rules = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("head_vocab", ("tensor", "fsdp", "data")),  # the training LM head: vocabulary over every device
    ("layers", None),
    ("head_dim", None),
    ("seq", None),
    ("cache_seq", None),
)


def decode_rules(rules: Rules = DEFAULT_RULES) -> Rules:
    """The sampler's rules: rows split over the batch axes as in training, but no weight split over the
    data or fsdp axes, so each device holds whole weights (or its tensor-parallel slice of them) and a
    decode step gathers none. The sampler copies the weights into this layout once per call."""
    def without_replica_axes(targets):
        targets = (targets,) if isinstance(targets, str) else tuple(targets or ())
        return tuple(axis for axis in targets if axis not in ("data", "fsdp")) or None

    return tuple((name, targets if name == "batch" else without_replica_axes(targets)) for name, targets in rules)


def shards(logical_axis: str, mesh: Mesh | AbstractMesh | None, rules: Rules = DEFAULT_RULES) -> int:
    """How many ways `rules` split a dimension named `logical_axis` on `mesh` (when it divides)."""
    if mesh is None:
        return 1
    targets = dict(rules).get(logical_axis)
    targets = (targets,) if isinstance(targets, str) else tuple(targets or ())
    count = 1
    for axis in targets:
        count *= mesh.shape[axis]
    return count


def partition_spec(logical_axes: Sequence[str | None], shape: Sequence[int], mesh: Mesh | AbstractMesh,
                   rules: Rules = DEFAULT_RULES) -> PartitionSpec:
    """The PartitionSpec of an array of `shape` whose dimensions have `logical_axes` (None: replicated)."""
    if len(logical_axes) != len(shape):
        raise ValueError(f"logical axes {tuple(logical_axes)} do not match the shape {tuple(shape)}")
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for name, dim in zip(logical_axes, shape):
        if name is not None and name not in table:
            raise ValueError(f"logical axis {name!r} has no sharding rule; rules cover {sorted(table)}")
        targets = table.get(name) if name is not None else None
        targets = (targets,) if isinstance(targets, str) else tuple(targets or ())
        kept, size = [], 1
        for axis in targets:
            if axis not in used and mesh.shape[axis] > 1 and dim % (size * mesh.shape[axis]) == 0:
                kept.append(axis)
                size *= mesh.shape[axis]
        used.update(kept)
        spec.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
    return PartitionSpec(*spec)


def logical_sharding(logical_axes: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
                     rules: Rules = DEFAULT_RULES) -> NamedSharding:
    return NamedSharding(mesh, partition_spec(logical_axes, shape, mesh, rules))


def constrain(x: jax.Array, logical_axes: Sequence[str | None], mesh: Mesh | None,
              rules: Rules = DEFAULT_RULES) -> jax.Array:
    """Inside jit: asks the partitioner to lay `x` out by its logical axes; unchanged when `mesh` is None."""
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, logical_sharding(logical_axes, x.shape, mesh, rules))


def replicate(x: jax.Array, mesh: Mesh | None) -> jax.Array:
    """Inside jit: every device (and process) gets all of `x`, so the host can read it after the call."""
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec()))


def variable_axes(variable: nnx.Variable) -> tuple[str | None, ...] | None:
    """The logical axis names an nnx Variable carries in its `out_sharding` metadata (None: none)."""
    axes = variable.get_metadata().get("out_sharding")
    return None if axes is None else tuple(axes)


def tree_shardings(tree, mesh: Mesh, rules: Rules = DEFAULT_RULES):
    """NamedShardings for every array of `tree` (same structure), arrays or jax.ShapeDtypeStructs.

    An array inside an nnx Variable with logical axes is sharded by them: model parameters, and the
    optax moments that mirror them (optax keeps the Variable nodes). Every other array is replicated.
    """

    def sharding_of(x):
        if isinstance(x, nnx.Variable):
            value, axes = x.get_value(), variable_axes(x)
            spec = PartitionSpec() if axes is None else partition_spec(axes, value.shape, mesh, rules)
            return x.replace(NamedSharding(mesh, spec))
        return NamedSharding(mesh, PartitionSpec())

    return jax.tree.map(sharding_of, tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


def mesh_of(tree) -> Mesh | None:
    """The mesh the arrays of `tree` are laid out on (None when they are not NamedSharding-placed)."""
    for leaf in jax.tree.leaves(tree):
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, NamedSharding) and isinstance(sharding.mesh, Mesh):
            return sharding.mesh
    return None
