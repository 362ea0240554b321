"""What a run leaves beside its checkpoints to say what it is: the resolved config (secrets redacted) in
WORKDIR/config.json, the code's git revision in WORKDIR/git_revision.txt, and what its data files held in
WORKDIR/data.json (each split's number of examples and the sha256 of the examples read).

A rerun on a workdir that holds a checkpoint resumes that run, so its config must be the run's: one that
differs in any key outside `RESUMABLE_KEYS` is refused in one line, unless allowed; an allowed change keeps
the earlier config.json as config.previous-N.json beside the new one. Its data must be the run's too (the
checkpoint's place in the data means nothing in other data): a data file edited since, even with as many
rows, is refused in one line before the weights load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

from herl_jax.data import DataError, Dataset
from herl_jax.own_files import write_file
from herl_jax.training.run_config import ConfigError, base_config

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
# Keys that may change when a run resumes: how long it runs, how often it logs, validates and saves, and
# whether it exports. None of them changes what a step computes.
RESUMABLE_KEYS = ("trainer.steps", "trainer.log_every", "trainer.validate_every", "trainer.validation_prompts",
                  "trainer.log_samples_every", "trainer.log_samples_groups", "trainer.wandb_project",
                  "trainer.checkpoint_every", "trainer.keep_checkpoints", "trainer.export_final",
                  "trainer.export_best", "trainer.allow_config_change", "trainer.compilation_cache_dir")
_SECRET_SUFFIXES = ("api_key", "apikey", "secret", "password", "token")


def record_config(workdir: Path, config: dict, resuming: bool, allow_change: bool, write: bool = True) -> None:
    """Writes `config` (a nested dict) to WORKDIR/config.json, redacted; when `resuming` a checkpointed run
    whose recorded config differs, refuses (ConfigError) unless `allow_change`. `write=False` only checks
    (processes other than the first)."""
    path = workdir / CONFIG_FILE
    new = redacted(config)
    old = _read(path) if resuming else None
    changed = [] if old is None else changed_keys(old, new, defaults=base_config().to_dict())
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        if not allow_change:
            raise ConfigError(f"{path}: the config differs from the checkpointed run's in {shown}; rerun with "
                              "--allow_config_change (or --config.trainer.allow_config_change=True) to resume "
                              "with it, or use a new workdir")
        if write:
            kept = _previous_name(workdir)
            path.replace(kept)
            log.warning("the config differs from the checkpointed run's in %s: resuming with it as allowed; "
                        "the earlier one is kept in %s", shown, kept)
    if write:
        write_file(path, json.dumps(new, indent=2))


def record_data(workdir: Path, dataset: Dataset, resuming: bool, write: bool = True) -> None:
    """Writes WORKDIR/data.json for `dataset`; when `resuming` a checkpointed run whose recorded data differs,
    refuses (DataError) naming the split, the files and both records. `write=False` only checks."""
    path = workdir / DATA_FILE
    new = {"train": _fingerprint(dataset.train), "validation": _fingerprint(dataset.validation)}
    old = _read(path) if resuming else None
    changed = [split for split in new if old is not None and old.get(split) != new[split]]
    if changed:
        files = ", ".join(dataset.config.train_files + dataset.config.validation_files)
        raise DataError(f"{path}: the {' and '.join(changed)} data differ from the checkpointed run's (then "
                        f"{_shown(old, changed)}; now {_shown(new, changed)}; read from {files}): restore the data "
                        "files the run started with, or train in a new workdir")
    if write:
        write_file(path, json.dumps(new, indent=2) + "\n")


def _fingerprint(examples) -> dict:
    """Number of examples and the sha256 of their fields as read (ids, messages, rubrics, sources)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(repr(example).encode() + b"\n")
    return {"examples": len(examples), "sha256": digest.hexdigest()}


def _shown(record: dict, splits: list[str]) -> str:
    return ", ".join(f"{split}: {record[split]['examples']} examples, sha256 {record[split]['sha256'][:12]}"
                     for split in splits)


def record_git_revision(workdir: Path) -> None:
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""
    write_file(workdir / "git_revision.txt", (revision or "unknown") + "\n")


def changed_keys(old: dict, new: dict, defaults: dict | None = None) -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (added and removed keys too),
    `RESUMABLE_KEYS` left out. A key that only `new` has, at its value in `defaults` (the base config), is no
    change: newer code added it, and its default computes what the older run did."""
    a, b = _flatten(old), _flatten(new)
    base = _flatten(json.loads(json.dumps(defaults, default=str))) if defaults else {}
    return sorted(k for k in a.keys() | b.keys() if a.get(k, _MISSING) != b.get(k, _MISSING)
                  and k not in RESUMABLE_KEYS and not (k not in a and k in base and b[k] == base[k]))


def redacted(config: dict) -> dict:
    """The run's config as it is recorded (config.json, the trackers): secrets redacted, plain JSON values."""
    return json.loads(json.dumps(redact(config), default=str))


def redact(tree):
    """A copy of a nested dict with the values of secret-looking keys replaced (key *names* kept)."""
    if isinstance(tree, dict):
        return {k: ("<redacted>" if _is_secret(k) and v is not None else redact(v)) for k, v in tree.items()}
    return tree


_MISSING = object()


def _is_secret(key: str) -> bool:
    key = key.lower()
    return key.endswith(_SECRET_SUFFIXES) and not key.endswith("_env")


def _flatten(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict) or not tree:
        return {prefix.rstrip("."): tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def _read(path: Path) -> dict | None:
    """The recorded config or data, or None when there is none to compare with (absent or unreadable: set aside)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("%s is unreadable (%s): not compared with this run's config", path, e)
        return None


def _previous_name(workdir: Path) -> Path:
    n = 1
    while (workdir / f"config.previous-{n}.json").exists():
        n += 1
    return workdir / f"config.previous-{n}.json"
