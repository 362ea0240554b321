"""The device mesh: axes ("data", "fsdp", "tensor") with sizes from the `parallel` config section.

  data    replicas of the parameters; the batch is split across them
  fsdp    the batch is split across them too, and the parameters and optimizer state are sharded
          (ZeRO-3 / FSDP: each layer's weights are gathered when used)
  tensor  attention heads, MLP columns and the vocabulary are split across them (Megatron style)

One size may be -1: it takes whatever the others leave of the device count. The tensor axis is the
innermost (its devices are neighbours, on one host), then fsdp, then data.
"""

from __future__ import annotations

from typing import Sequence

import jax
from jax.sharding import AbstractMesh, AxisType, Mesh

from herl_jax.parallel.config import AXES, MeshConfig


def make_mesh(config: MeshConfig, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A Mesh with axes AXES over `devices` (default: every device of every process).

    Axes are of type Auto: arrays carry NamedShardings and XLA's partitioner propagates them.
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = config.shape(len(devices))
    return jax.make_mesh(tuple(sizes.values()), AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)


def abstract_mesh(config: MeshConfig, num_devices: int) -> AbstractMesh:
    """The mesh's shape without devices, for planning a run on hardware this machine does not have."""
    sizes = config.shape(num_devices)
    return AbstractMesh(tuple(sizes.values()), AXES, axis_types=(AxisType.Auto,) * len(AXES))
