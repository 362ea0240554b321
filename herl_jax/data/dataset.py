"""`load_dataset(config.data)`: the trainer's entry point, from the `data` sub-config.

Keys (see `default_config()`):
- train_files: JSONL or parquet files, read in order; `bundled:NAME` names a file in herl_jax/data/bundled/.
- validation_files: held-out files; when empty, `validation_fraction` of the training rows are held out
  by a seeded hash of their ids (split.py).
- format: the row schema of the training files: 'hir', 'rar' or 'ifeval' (formats.py), or 'sft' / 'dpo'
  (rows of given responses, for the offline objectives SFT and DPO).
- validation_format: the schema of the validation files ("" = `format`).
- max_bad_fraction: a file with a larger fraction of malformed rows stops the run (DataError).
- seed: the split's seed and the training order's seed; shuffle: reshuffle every epoch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from herl_jax.data.example import Example
from herl_jax.data.formats import FORMATS
from herl_jax.data.iterator import BatchIterator
from herl_jax.data.reader import read_examples
from herl_jax.data.split import split_examples
from herl_jax.data.stats import ReadStats
from herl_jax.sections import check

BUNDLED_DIR = Path(__file__).parent / "bundled"
BUNDLED_PREFIX = "bundled:"
BUNDLED_IF_TRAIN = "bundled:if_train.jsonl"


def resolve_path(name: str) -> Path:
    """A file path, with `bundled:NAME` meaning the package's own herl_jax/data/bundled/NAME."""
    return BUNDLED_DIR / name[len(BUNDLED_PREFIX) :] if name.startswith(BUNDLED_PREFIX) else Path(name)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    train_files: tuple[str, ...] = (BUNDLED_IF_TRAIN,)
    validation_files: tuple[str, ...] = ()
    format: str = "hir"
    validation_format: str = ""
    max_bad_fraction: float = 0.1
    validation_fraction: float = 0.05
    seed: int = 0
    shuffle: bool = True

    def __post_init__(self):
        for name in ("train_files", "validation_files"):  # one file may be given as a plain string
            files = getattr(self, name)
            object.__setattr__(self, name, (files,) if isinstance(files, str) else tuple(files))
        check(self, [
            (bool(self.train_files), "train_files", "must name at least one file"),
            (self.format in FORMATS, "format", f"expected one of {sorted(FORMATS)}"),
            (self.validation_format in ("", *FORMATS), "validation_format",
             f"expected '' (= format) or one of {sorted(FORMATS)}"),
            (0.0 <= self.max_bad_fraction <= 1.0, "max_bad_fraction", "must be in [0, 1]"),
            (0.0 <= self.validation_fraction < 1.0, "validation_fraction", "must be in [0, 1)"),
        ])

    @classmethod
    def from_config(cls, config: Any) -> DataConfig:
        """From the `data` sub-config (ConfigDict or mapping); unknown keys are errors."""
        if isinstance(config, DataConfig):
            return config
        values = dict(config.to_dict() if hasattr(config, "to_dict") else config)
        unknown = values.keys() - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown data config keys: {sorted(unknown)}")
        return cls(**values)


def default_config():
    """The `data` sub-config (an ml_collections ConfigDict): the bundled instruction-following set."""
    from ml_collections import ConfigDict  # lazy: host-only dependency

    defaults = dataclasses.asdict(DataConfig())
    return ConfigDict({k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()})


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The training and held-out examples, and one `ReadStats` per file read."""

    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    stats: tuple[ReadStats, ...]
    config: DataConfig

    def train_batches(self, batch_size: int, num_processes: int = 1, process_index: int = 0) -> BatchIterator:
        """The resumable training iterator, seeded and shuffled as the config says."""
        config = self.config
        return BatchIterator(self.train, batch_size, config.seed, config.shuffle, num_processes, process_index)


def _read_all(files: tuple[str, ...], config: DataConfig, seen_ids: set[str], data_format: str):
    examples, stats = [], []
    for name in files:
        file_examples, file_stats = read_examples(resolve_path(name), data_format, config.max_bad_fraction, seen_ids)
        examples += file_examples
        stats.append(file_stats)
    return examples, stats


def load_dataset(config: Any) -> Dataset:
    """Read, validate and split the data that `config` (the `data` sub-config) names."""
    config = DataConfig.from_config(config)
    seen_ids: set[str] = set()
    train, stats = _read_all(config.train_files, config, seen_ids, config.format)
    if config.validation_files:
        validation, validation_stats = _read_all(config.validation_files, config, seen_ids,
                                                 config.validation_format or config.format)
        return Dataset(tuple(train), tuple(validation), tuple(stats + validation_stats), config)
    train, validation = split_examples(train, config.validation_fraction, config.seed)
    return Dataset(train, validation, tuple(stats), config)
