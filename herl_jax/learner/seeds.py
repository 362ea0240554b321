"""Every seed of a run, derived from the run's seed (`trainer.seed`) in one place.

Per RL step: rollouts and revisions draw with their own sampler seeds; a chunked call's piece k > 0 draws with
a seed of its own; each group's random choices (the slot a revision replaces) draw from a generator keyed by
its prompt's tokens, so they do not depend on which process assembles it; each optimizer step shuffles with a
generator keyed by its step count; the groups a step shows in the samples log are drawn from a generator of its own.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class StepSeeds:
    """The seeds of RL step ``step`` of a run seeded with ``run_seed``."""

    run_seed: int
    step: int

    @property
    def rollouts(self) -> int:
        return 2 * (self.run_seed * 1_000_003 + self.step)

    @property
    def revisions(self) -> int:
        return self.rollouts + 1

    def group_rng(self, prompt_ids: Sequence[int]) -> np.random.Generator:
        """The generator of one group's draws, keyed by its prompt's token ids."""
        return np.random.default_rng([self.run_seed, self.rollouts, zlib.crc32(np.asarray(prompt_ids, np.int32))])

    def samples_rng(self) -> np.random.Generator:
        """The generator that picks the groups the samples log shows (its key's length is no other's)."""
        return np.random.default_rng([self.run_seed, self.rollouts, 0, 0])


def piece_seed(seed: int, piece: int) -> int:
    """The sampler seed of piece ``piece`` of a chunked call seeded with ``seed`` (piece 0 keeps ``seed``);
    independent of every other (seed, piece) pair."""
    if piece == 0:
        return seed
    return int(np.random.SeedSequence([seed, piece]).generate_state(1)[0] >> 1)


def shuffle_rng(run_seed: int, optimizer_step: int) -> np.random.Generator:
    """The generator that orders the rows of the update starting at ``optimizer_step``."""
    return np.random.default_rng([run_seed, optimizer_step])
