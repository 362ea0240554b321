"""Read examples from a JSONL or parquet file, skipping malformed rows and counting why.

A file whose bad rows exceed `max_bad_fraction` of its rows, or that yields no example, raises
`DataError` naming the file, with the counts by reason and a few line numbers for each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from herl_jax.data.example import Example
from herl_jax.data.formats import FORMATS
from herl_jax.data.stats import DataError, ReadStats, RowError

PARQUET_BATCH_ROWS = 1024


def _jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value or RowError) for each non-blank line; lines split at \\n only."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line.decode("utf-8"))
            except ValueError as error:  # UnicodeDecodeError is a ValueError too
                yield number, RowError("invalid_json", str(error))


def _parquet_rows(path: Path) -> Iterator[tuple[int, object]]:
    """(row number, row dict) for each row; needs pyarrow, imported only here."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    number = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except pa.ArrowException as error:
        raise DataError(f"{path}: not a readable parquet file after {number} rows: {error}") from None


def iter_rows(path: str | Path) -> Iterator[tuple[int, object]]:
    """The rows of a `.jsonl` or `.parquet` file, numbered from 1."""
    path = Path(path)
    if path.suffix == ".parquet":
        return _parquet_rows(path)
    if path.suffix == ".jsonl":
        return _jsonl_rows(path)
    raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .jsonl or .parquet)")


def read_examples(
    path: str | Path,
    format: str,
    max_bad_fraction: float = 0.1,
    seen_ids: set[str] | None = None,
) -> tuple[list[Example], ReadStats]:
    """The examples of one file in file order, and what was skipped.

    `format`: 'rar', 'hir' or 'ifeval' (see formats.py). `seen_ids`: ids taken by earlier files; a row
    whose id is taken is skipped as 'duplicate_id', and the ids read here are added to it.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown data format {format!r}; expected one of {sorted(FORMATS)}")
    parse = FORMATS[format]
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    seen_ids = set() if seen_ids is None else seen_ids
    stats = ReadStats(str(path))
    examples = []
    for number, row in iter_rows(path):
        stats.rows += 1
        try:
            if isinstance(row, RowError):
                raise row
            if not isinstance(row, dict):
                raise RowError("not_an_object", f"a row must be a JSON object, got {type(row).__name__}")
            example = parse(row, path.stem)
            if example.id in seen_ids:
                raise RowError("duplicate_id", repr(example.id))
        except RowError as error:
            stats.skip(number, error)
            continue
        seen_ids.add(example.id)
        examples.append(example)
        stats.kept += 1
    if not examples:
        raise DataError(f"{path}: no usable example\n  {stats.summary()}")
    if stats.bad_fraction > max_bad_fraction:
        raise DataError(
            f"{path}: {stats.bad_fraction:.1%} of rows are malformed, more than max_bad_fraction="
            f"{max_bad_fraction}\n  {stats.summary()}"
        )
    return examples, stats
