"""The `parallel` section: the mesh's axis sizes (`MeshConfig`), checked without JAX; mesh.py builds the mesh.
The axes are mesh.py's docstring's."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from herl_jax.errors import UserError

AXES = ("data", "fsdp", "tensor")


class MeshError(UserError, ValueError):
    """Mesh sizes that are invalid or do not fit the device count; the message names the config key."""


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Mesh axis sizes; at most one is -1 (fill the remaining devices)."""

    data: int = 1
    fsdp: int = -1
    tensor: int = 1

    def __post_init__(self):
        for name in AXES:
            size = getattr(self, name)
            if not isinstance(size, int) or isinstance(size, bool) or (size < 1 and size != -1):
                raise MeshError(f"parallel.{name}={size!r}: must be a positive integer or -1 (fill)")
        filled = [name for name in AXES if getattr(self, name) == -1]
        if len(filled) > 1:
            raise MeshError(f"parallel.{filled[1]}=-1: only one mesh axis may be -1, and parallel.{filled[0]} is")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "MeshConfig":
        """From the `parallel` sub-config (ConfigDict or mapping); unknown keys are an error."""
        values = dict(cfg)
        unknown = sorted(set(values) - set(AXES))
        if unknown:
            raise MeshError(f"parallel: unknown keys {unknown}; known: {list(AXES)}")
        return cls(**values)

    def shape(self, num_devices: int) -> dict[str, int]:
        """Axis name -> size for `num_devices` devices, the -1 axis filled."""
        sizes = {name: getattr(self, name) for name in AXES}
        fixed = math.prod(s for s in sizes.values() if s != -1)
        filled = [name for name, s in sizes.items() if s == -1]
        if filled:
            name = filled[0]
            if num_devices % fixed:
                raise MeshError(f"parallel.{name}=-1: the other axes ({_describe(sizes)}) use {fixed} devices, "
                                f"which does not divide the {num_devices} devices")
            sizes[name] = num_devices // fixed
        elif fixed != num_devices:
            largest = max(AXES, key=lambda n: sizes[n])
            raise MeshError(f"parallel.{largest}={sizes[largest]}: the mesh {_describe(sizes)} needs {fixed} devices, "
                            f"but there are {num_devices} (set one axis to -1 to fill)")
        return sizes


def default_config():
    """The `parallel` section's ConfigDict: MeshConfig's defaults, FSDP over every device."""
    from ml_collections import ConfigDict

    return ConfigDict(dataclasses.asdict(MeshConfig()))


def _describe(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={size}" for name, size in sizes.items() if size != -1)
