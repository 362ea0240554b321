"""Training data (host side, numpy / stdlib only): examples, readers, the split, the batch iterator.

Modules, from the bottom up:
- `example`: `Example`, one prompt with its rubric (`OfflineExample`: with given responses); `stats`: skipped-row counts and `DataError`;
- `formats`: the row schemas (`rar`, `hir`, `ifeval`; `sft`, `dpo`); `reader`: JSONL / parquet files to examples;
- `split`: the seeded train / validation split; `iterator`: the resumable, multi-process batch iterator;
- `dataset`: `load_dataset(config.data)` and `default_config()`, the trainer's entry point;
- `eval_data`, `overlap`, `constraints`, `build_if_dataset`: the builder of the bundled training set.
"""

from herl_jax.data.dataset import BUNDLED_IF_TRAIN, DataConfig, Dataset, default_config, load_dataset, resolve_path
from herl_jax.data.example import Example, OfflineExample
from herl_jax.data.iterator import BatchIterator, IteratorState, shard
from herl_jax.data.reader import read_examples
from herl_jax.data.split import split_examples
from herl_jax.data.stats import DataError, ReadStats

__all__ = [
    "BUNDLED_IF_TRAIN",
    "BatchIterator",
    "DataConfig",
    "DataError",
    "Dataset",
    "Example",
    "IteratorState",
    "OfflineExample",
    "ReadStats",
    "default_config",
    "load_dataset",
    "read_examples",
    "resolve_path",
    "shard",
    "split_examples",
]
