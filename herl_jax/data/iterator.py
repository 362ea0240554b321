"""A deterministic, resumable iterator over batches of examples, split across processes.

Every epoch visits the examples in a fresh order drawn from (seed, epoch); each global batch holds
`batch_size` examples, and process i of n takes the i-th contiguous slice of it, so all processes walk
the same sequence in step and share one state. The last `len(examples) % batch_size` examples of an
epoch's order are left out of that epoch (a different few each epoch when shuffled).
The state is (epoch, position of the next batch in the epoch): save `state_dict()` in a checkpoint,
and `restore()` it to continue exactly where the run stopped.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Mapping, Sequence

from herl_jax.data.example import Example


@dataclasses.dataclass(frozen=True)
class IteratorState:
    epoch: int = 0
    position: int = 0  # index, within the epoch, of the next global batch


def shard(examples: Sequence[Example], num_processes: int, process_index: int) -> tuple[Example, ...]:
    """Every `num_processes`-th example from `process_index` on: one process's part of a full pass."""
    _check_process(num_processes, process_index)
    return tuple(examples[process_index::num_processes])


def _check_process(num_processes: int, process_index: int) -> None:
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"need 0 <= process_index < num_processes, got {process_index} of {num_processes}")


class BatchIterator:
    """Yields this process's examples of each global batch, as a tuple, forever."""

    def __init__(
        self,
        examples: Sequence[Example],
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        num_processes: int = 1,
        process_index: int = 0,
    ):
        _check_process(num_processes, process_index)
        if batch_size < 1 or batch_size % num_processes:
            raise ValueError(f"batch_size ({batch_size}) must be a positive multiple of num_processes "
                             f"({num_processes})")
        if len(examples) < batch_size:
            raise ValueError(f"{len(examples)} examples cannot fill one batch of {batch_size}")
        self.examples = tuple(examples)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.num_processes = num_processes
        self.process_index = process_index
        self._state = IteratorState()
        self._order_epoch, self._order = -1, []

    @property
    def batches_per_epoch(self) -> int:
        return len(self.examples) // self.batch_size

    @property
    def state(self) -> IteratorState:
        return self._state

    def epoch_order(self, epoch: int) -> list[int]:
        """The indices of `examples` in the order epoch `epoch` visits them."""
        order = list(range(len(self.examples)))
        if self.shuffle:
            random.Random(f"{self.seed}:{epoch}").shuffle(order)  # stable across Python versions
        return order

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[Example, ...]:
        epoch, position = self._state.epoch, self._state.position
        if self._order_epoch != epoch:
            self._order_epoch, self._order = epoch, self.epoch_order(epoch)
        per_process = self.batch_size // self.num_processes
        start = position * self.batch_size + self.process_index * per_process
        batch = tuple(self.examples[i] for i in self._order[start : start + per_process])
        position += 1
        if position == self.batches_per_epoch:
            epoch, position = epoch + 1, 0
        self._state = IteratorState(epoch, position)
        return batch

    def state_dict(self) -> dict[str, int]:
        """The position as plain ints for a checkpoint, with what it is only valid for."""
        return {**dataclasses.asdict(self._state), "num_examples": len(self.examples), "seed": self.seed}

    def restore(self, state: Mapping[str, int]) -> None:
        """Continue from a `state_dict()`; refuses a state saved for other data or another seed."""
        for key, expected in (("num_examples", len(self.examples)), ("seed", self.seed)):
            if key in state and int(state[key]) != expected:
                raise ValueError(f"iterator state was saved with {key}={state[key]}, this iterator has {expected}")
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < self.batches_per_epoch:
            raise ValueError(f"invalid iterator state: epoch {epoch}, position {position}")
        self._state = IteratorState(epoch, position)
