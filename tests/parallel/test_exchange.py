"""`parallel.joint_pieces` in one process (tests/parallel/test_multi_process.py joins two): the items in
consecutive pieces, each wholly this process's own."""

import pytest

from herl_jax import parallel


@pytest.mark.parametrize("count, chunks, sizes", [
    (7, 3, [2, 3, 2]),
    (7, 1, [7]),
    (2, 4, [1, 1]),  # never an empty piece: fewer pieces than chunks
])
def test_one_process_cuts_its_items_into_consecutive_pieces(count, chunks, sizes):
    items = [f"item {i}" for i in range(count)]
    pieces = parallel.joint_pieces(items, chunks)
    assert [len(p.items) for p in pieces] == sizes
    assert [x for p in pieces for x in p.items] == items
    assert [p.first for p in pieces] == [sum(sizes[:k]) for k in range(len(sizes))]
    assert all((p.start, p.stop) == (0, len(p.items)) for p in pieces)


def test_no_items_make_no_pieces():
    assert parallel.joint_pieces([], 4) == []
