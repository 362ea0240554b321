"""Sharding across devices and hosts: the mesh, logical-axis rules, placement, multi-host start-up, and
the exchange of host values between processes.

Floor 1 of the package: imports nothing from herl_jax. See the README's "Multiple GPUs and hosts".
"""

from herl_jax.parallel.distributed import initialize_distributed
from herl_jax.parallel.exchange import JointPiece, allgather_objects, joint_pieces, my_share
from herl_jax.parallel.mesh import AXES, MeshConfig, MeshError, abstract_mesh, default_config, make_mesh
from herl_jax.parallel.placement import host_to_global, to_host
from herl_jax.parallel.rules import (
    DEFAULT_RULES,
    Rules,
    constrain,
    decode_rules,
    logical_sharding,
    mesh_of,
    partition_spec,
    replicate,
    shards,
    tree_shardings,
    variable_axes,
)

__all__ = [
    "AXES",
    "DEFAULT_RULES",
    "JointPiece",
    "MeshConfig",
    "MeshError",
    "Rules",
    "abstract_mesh",
    "allgather_objects",
    "constrain",
    "decode_rules",
    "default_config",
    "host_to_global",
    "initialize_distributed",
    "joint_pieces",
    "logical_sharding",
    "make_mesh",
    "mesh_of",
    "my_share",
    "partition_spec",
    "replicate",
    "shards",
    "to_host",
    "tree_shardings",
    "variable_axes",
]
