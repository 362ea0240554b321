"""Plan a training run's memory per device before launching it (herl_jax.memory_plan), and say whether it fits:

  python -m herl_jax.plan --config configs/paper.py:qwen2.5-7b,herl,if --num_devices=8 \
      [--config.parallel.fsdp=8 ...] [--device_memory_gib=80]
"""

from __future__ import annotations

import math

import jax

from herl_jax import parallel
from herl_jax.memory_plan import GIB, MemoryPlan, plan_memory


def format_plan(plan: MemoryPlan, device_memory_gib: float) -> str:
    cfg = plan.model_config
    mesh = " ".join(f"{k}={v}" for k, v in plan.mesh_shape.items())
    devices = math.prod(plan.mesh_shape.values())
    lines = [
        f"model  {plan.model}: {cfg.family}, {cfg.num_params / 1e9:.2f}B parameters, compute {cfg.dtype}, "
        f"remat {'on' if cfg.remat else 'off'}",
        f"mesh   {mesh} ({devices} devices)",
        "",
        f"{'':<58}{'per device':>12}{'all devices':>14}",
    ]
    for phase in ("persistent", "sampling", "training"):
        lines.append(f"{phase} (total {plan.phase_bytes(phase) / GIB:.2f} GiB per device)")
        for item in (i for i in plan.items if i.phase == phase):
            lines.append(f"  {item.name:<56}{item.per_device / GIB:>9.2f} GiB{item.total / GIB:>10.1f} GiB")
    peak, limit = plan.peak_per_device, device_memory_gib * GIB
    verdict = (f"fits: {(limit - peak) / GIB:.1f} GiB to spare" if peak <= limit
               else f"does NOT fit: {(peak - limit) / GIB:.1f} GiB over")
    lines += ["", f"peak per device (persistent + max(sampling, training)): {peak / GIB:.2f} GiB of "
                  f"{device_memory_gib:g} GiB -> {verdict}"]
    return "\n".join(lines)


def main(argv) -> None:
    """Prints the plan; a bad flag raises UsageError, a bad config propagates: both end in one line."""
    from herl_jax.cli_errors import UsageError
    from herl_jax.config import validate

    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    if _NUM_DEVICES.value is not None and _NUM_DEVICES.value < 1:
        raise UsageError(f"--num_devices={_NUM_DEVICES.value}: must be >= 1 (omit it for the product of "
                         "config.parallel's sizes, or this machine's device count when one size is -1)")
    if not _DEVICE_MEMORY_GIB.value > 0:
        raise UsageError(f"--device_memory_gib={_DEVICE_MEMORY_GIB.value:g}: must be > 0")
    config = _CONFIG.value
    validate(config)
    num_devices = _NUM_DEVICES.value if _NUM_DEVICES.value is not None else default_device_count(config)
    print(format_plan(plan_memory(config, num_devices), _DEVICE_MEMORY_GIB.value))


def default_device_count(config) -> int:
    """The product of the mesh sizes when none is -1, else this machine's device count."""
    sizes = [config.parallel[a] for a in parallel.AXES]
    return math.prod(sizes) if -1 not in sizes else jax.device_count()


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    from herl_jax.cli_errors import run_cli
    from herl_jax.config import parse_flags

    _CONFIG = config_flags.DEFINE_config_file("config", None, "training config file (see configs/)")
    _NUM_DEVICES = flags.DEFINE_integer("num_devices", None, "devices of the planned run (default: the "
                                        "product of config.parallel's sizes, or this machine's count)")
    _DEVICE_MEMORY_GIB = flags.DEFINE_float("device_memory_gib", 80.0, "memory of one device, GiB")
    flags.mark_flags_as_required(["config"])
    run_cli(lambda: app.run(main, flags_parser=parse_flags))
