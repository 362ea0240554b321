"""Finding training runs on disk and reading what each left: config, metrics, status.

A run directory is what `herl_jax.train --workdir` writes: config.json and git_revision.txt at the start,
metrics.jsonl (one line a logged step), checkpoints/, FINISHED after the last step, and herl.lock while a
trainer holds it (workdir_lock.py). A path given to the report is a run directory when it holds
metrics.jsonl or config.json with git_revision.txt; otherwise it is searched, depth first, for run
directories (a sweep root, launch/sweep.py's ROOT/NAME, or a folder of sweeps); checkpoints/ and export/
are not searched. A sweep root's manifest.json (SLURM mode) names every run's workdir, so a run that has
not started yet is listed too.

Status, in this order:
- finished: FINISHED exists;
- running: herl.lock names a live pid on this host (a lock from another host: "running (on HOST)", as it
  cannot be checked from here);
- failed: FAILED exists (the run stopped as failed: herl_jax.training.run_outcome), or train.log holds a
  Traceback or an ERROR record (a one-line CLI error goes to stderr only, and a crash's traceback to stderr:
  such runs show as unfinished; their stderr, e.g. SLURM's log, says why);
- not started: neither metrics nor a lock (only a manifest entry, or config.json alone);
- unfinished: anything else (stopped, killed, or interrupted; a rerun resumes it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from pathlib import Path

from herl_jax.cli_errors import UsageError
from herl_jax.training.run_outcome import FINISHED, failure_of
from herl_jax.workdir_lock import lock_holder

NOT_SEARCHED = ("checkpoints", "export", "tensorboard")
_FAILURE = re.compile(r"^Traceback |^\S+ \S+ ERROR ", re.MULTILINE)


@dataclasses.dataclass
class Run:
    """One run directory: its flattened config (None when config.json is missing), metrics lines and status."""

    path: Path
    config: dict | None
    metrics: list[dict]
    status: str
    evaluations: dict = dataclasses.field(default_factory=dict)  # benchmark -> headline number

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def steps_done(self) -> int:
        return max((int(m["step"]) for m in self.metrics), default=0)

    @property
    def steps_total(self) -> int | None:
        return None if self.config is None else self.config.get("trainer.steps")

    @property
    def seed(self):
        return None if self.config is None else self.config.get("trainer.seed")


def relative(path: Path, folder: Path) -> str:
    """`path` relative to `folder` (a report's), "/"-separated: a report holds no machine's absolute paths."""
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run under `paths`, each once, in the order found; raises FileNotFoundError for a missing path."""
    found: dict[Path, None] = {}
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such run directory or sweep root")
        for directory in _run_dirs(path):
            found.setdefault(directory.resolve())
    return [read_run(directory) for directory in found]


def _run_dirs(path: Path) -> list[Path]:
    if is_run_dir(path):
        return [path]
    planned = _manifest_workdirs(path)
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and p.name not in NOT_SEARCHED):
        found += _run_dirs(child)
    return found + [p for p in planned if p.resolve() not in {f.resolve() for f in found}]


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.jsonl").exists() or ((path / "config.json").exists()
                                                 and (path / "git_revision.txt").exists())


def _manifest_workdirs(root: Path) -> list[Path]:
    """The workdir of every run in ROOT/manifest.json (launch/sweep.py's SLURM mode), if any."""
    manifest = root / "manifest.json"
    if not manifest.exists():
        return []
    workdirs = [Path(entry["workdir"]) for entry in json.loads(manifest.read_text())]
    return [workdir if workdir.is_absolute() else Path.cwd() / workdir for workdir in workdirs]


def read_run(path: Path) -> Run:
    config_path = path / "config.json"
    try:
        config = flatten(json.loads(config_path.read_text())) if config_path.exists() else None
    except ValueError:
        raise UsageError(f"{config_path}: not a JSON object (a trainer's resolved config)") from None
    metrics = read_metrics(path / "metrics.jsonl")
    return Run(path, config, metrics, run_status(path, bool(metrics)))


def read_metrics(path: Path) -> list[dict]:
    """metrics.jsonl's lines, by step; a torn line (a kill mid-write) is skipped, a repeated step's last line wins."""
    if not path.exists():
        return []
    by_step: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            by_step[int(record["step"])] = record
        except (ValueError, KeyError, TypeError):
            continue
    return [by_step[step] for step in sorted(by_step)]


def run_status(path: Path, has_metrics: bool) -> str:
    """See the module docstring for the rules."""
    if (path / FINISHED).exists():
        return "finished"
    holder = lock_holder(path)
    if holder is not None:
        host = holder.get("host")
        return "running" if host == socket.gethostname() else f"running (on {host})"
    if failure_of(path) is not None:
        return "failed"
    log = path / "train.log"
    if log.exists() and _FAILURE.search(log.read_text(errors="replace")):
        return "failed"
    return "unfinished" if has_metrics else "not started"


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become tuples (hashable, comparable)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat
