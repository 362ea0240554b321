"""Sharding across devices and hosts: the mesh, logical-axis rules, placement, multi-host start-up, and
the exchange of host values between processes.

Floor 1 of the package: imports only floor 0 from herl_jax. See the README's "Multiple GPUs and hosts".
Names load with their module when first used (herl_jax.lazy): the `parallel` config section needs no JAX.
"""

from herl_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "config": ("AXES", "MeshConfig", "MeshError", "default_config"),
    "distributed": ("initialize_distributed",),
    "exchange": ("JointPiece", "allgather_objects", "joint_pieces", "my_share"),
    "mesh": ("abstract_mesh", "make_mesh"),
    "placement": ("host_to_global", "to_host"),
    "rules": ("DEFAULT_RULES", "Rules", "constrain", "decode_rules", "logical_sharding", "mesh_of", "partition_spec",
              "replicate", "shards", "tree_shardings", "variable_axes"),
})
