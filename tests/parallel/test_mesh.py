"""The mesh config and the logical-axis rules, checked without extra devices."""

import jax
import pytest
from jax.sharding import PartitionSpec as P

from herl_jax import parallel
from herl_jax.config import ConfigError, base_config, validate
from herl_jax.parallel import MeshConfig, MeshError, partition_spec


def mesh(data=1, fsdp=1, tensor=1):
    return parallel.abstract_mesh(MeshConfig(data, fsdp, tensor), data * fsdp * tensor)


@pytest.mark.parametrize("sizes, devices, shape", [
    (dict(), 8, (1, 8, 1)),  # default: FSDP over everything
    (dict(data=-1, fsdp=1), 8, (8, 1, 1)),
    (dict(data=2, fsdp=-1, tensor=2), 8, (2, 2, 2)),
    (dict(data=1, fsdp=2, tensor=4), 8, (1, 2, 4)),
    (dict(), 1, (1, 1, 1)),
])
def test_mesh_sizes(sizes, devices, shape):
    assert tuple(MeshConfig(**sizes).shape(devices).values()) == shape


@pytest.mark.parametrize("sizes, devices, message", [
    (dict(data=3), 8, "parallel.fsdp=-1: the other axes (data=3, tensor=1) use 3 devices"),
    (dict(data=2, fsdp=2, tensor=1), 8, "parallel.data=2: the mesh data=2, fsdp=2, tensor=1 needs 4 devices, "
                                        "but there are 8"),
    (dict(fsdp=16), 8, "parallel.fsdp=16: the mesh data=1, fsdp=16, tensor=1 needs 16 devices"),
])
def test_mesh_sizes_that_do_not_fit_name_the_key(sizes, devices, message):
    with pytest.raises(MeshError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MeshConfig(**sizes).shape(devices)


def test_make_mesh_on_this_machine():
    made = parallel.make_mesh(MeshConfig())
    assert made.axis_names == parallel.AXES and made.size == jax.device_count()
    with pytest.raises(MeshError, match="parallel.tensor=2"):
        parallel.make_mesh(MeshConfig(fsdp=1, tensor=2), devices=jax.devices()[:1])


@pytest.mark.parametrize("key, value, message", [
    ("fsdp", 0, "config.parallel.fsdp=0: must be a positive integer or -1"),
    ("tensor", -2, "config.parallel.tensor=-2: must be a positive integer or -1"),
    ("data", -1, "config.parallel.fsdp=-1: only one mesh axis may be -1, and parallel.data is"),
])
def test_config_validation_names_the_mesh_key(key, value, message):
    config = base_config()
    config.parallel[key] = value
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate(config)


def test_config_rejects_unknown_mesh_keys():
    config = base_config()
    config.parallel.pipeline = 2
    with pytest.raises(ConfigError, match="parallel.pipeline"):
        validate(config)


def test_kv_heads_that_do_not_divide_the_tensor_axis_are_replicated():
    axes = ("layers", "embed", "kv_heads", "head_dim")
    assert partition_spec(axes, (28, 3584, 2, 128), mesh(tensor=8)) == P(None, None, None, None)
    assert partition_spec(axes, (28, 3584, 1, 128), mesh(fsdp=2, tensor=2)) == P(None, "fsdp", None, None)
    assert partition_spec(axes, (28, 3584, 8, 128), mesh(fsdp=2, tensor=8)) == P(None, "fsdp", "tensor", None)


def test_batch_keeps_the_mesh_axes_that_divide_it():
    m = mesh(data=2, fsdp=2)
    assert partition_spec(("batch", "seq"), (8, 5), m) == P(("data", "fsdp"), None)
    assert partition_spec(("batch", "seq"), (2, 5), m) == P("data", None)
    assert partition_spec(("batch", "seq"), (3, 5), m) == P(None, None)


def test_a_mesh_axis_is_used_once_per_array():
    rules = (("rows", "fsdp"), ("cols", "fsdp"))
    assert partition_spec(("rows", "cols"), (4, 4), mesh(fsdp=2), rules) == P("fsdp", None)


def test_unknown_logical_axis_and_rank_mismatch_are_errors():
    with pytest.raises(ValueError, match="logical axis 'heads' has no sharding rule"):
        partition_spec(("heads",), (4,), mesh())
    with pytest.raises(ValueError, match="do not match the shape"):
        partition_spec(("batch",), (4, 2), mesh())
