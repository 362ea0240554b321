"""The frame of a JAX-against-PyTorch benchmark script.

The script runs itself twice more, as a "jax" and a "torch" worker process, so neither framework's
allocator, threads or caches disturb the other's timings; each worker writes its measurements as JSON,
and the parent writes them, with the run's settings, to benchmarks/out/NAME_DEVICE.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("jax", "torch")


def parse_args(parser: argparse.ArgumentParser, defaults: dict[str, dict], name: str) -> argparse.Namespace:
    """The script's flags plus --out and the hidden worker flags; unset flags take `defaults[args.device]`
    (the parser must define --device)."""
    parser.add_argument("--out", help=f"JSON path (default benchmarks/out/{name}_<device>.json)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in defaults[args.device].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def serve_as_worker(args: argparse.Namespace, runners: dict[str, Callable[[argparse.Namespace], dict]]) -> bool:
    """In a worker process: runs its side and writes the result; returns whether this was one."""
    if not args.worker:
        return False
    Path(args.result).write_text(json.dumps(runners[args.worker](args)))
    return True


def run_workers(env_for: Callable[[str], dict[str, str]]) -> dict[str, dict]:
    """Runs this script once per side, as a worker with the same flags and `env_for(side)`; their results."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in SIDES:
            path = Path(tmp) / f"{side}.json"
            subprocess.run([sys.executable, sys.argv[0], *sys.argv[1:], "--worker", side, "--result", str(path)],
                           env=env_for(side), check=True)
            results[side] = json.loads(path.read_text())
    return results


def write_results(args: argparse.Namespace, name: str, **fields) -> Path:
    """`fields` with the date, host and the run's settings, to --out or benchmarks/out/NAME_DEVICE.json."""
    out = Path(args.out or ROOT / "benchmarks" / "out" / f"{name}_{args.device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"), host=platform.node(),
        config={k: v for k, v in vars(args).items() if k not in ("worker", "result", "out")}, **fields), indent=2))
    return out
