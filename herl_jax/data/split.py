"""A deterministic train / validation split by a seeded hash of each example's id.

An example's side depends only on (seed, id), never on file order or on the other examples, so
adding rows to a file does not move existing ones between the two sides.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from herl_jax.data.example import Example


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) from SHA-256 of (seed, key), the same on every machine and Python version."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_examples(
    examples: Sequence[Example], validation_fraction: float, seed: int
) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """(train, validation), each in the input order; about `validation_fraction` go to validation."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    train, validation = [], []
    for example in examples:
        (validation if unit_hash(seed, example.id) < validation_fraction else train).append(example)
    return tuple(train), tuple(validation)
