"""The seeded split and the resumable, multi-process batch iterator."""

import pytest

from herl_jax.data import BatchIterator, Example, IteratorState, shard, split_examples
from herl_jax.rubrics.types import Rubric


def make_examples(n, prefix="e"):
    rubric = Rubric.from_criteria([("Answers the question.", 1.0)])
    return [
        Example(f"{prefix}{i}", ({"role": "user", "content": f"question {i}"},), f"question {i}", rubric, "rubric")
        for i in range(n)
    ]


def test_split_is_seeded_by_id_and_stable_when_rows_are_added():
    examples = make_examples(1000)
    train, validation = split_examples(examples, 0.2, seed=0)
    assert len(train) + len(validation) == 1000
    assert 150 < len(validation) < 250
    assert {e.id for e in train}.isdisjoint(e.id for e in validation)
    assert [e.id for e in validation] == sorted((e.id for e in validation), key=lambda i: int(i[1:]))  # file order
    assert split_examples(examples, 0.2, seed=0) == (train, validation)
    assert split_examples(examples, 0.2, seed=1)[1] != validation
    # the side of an example depends on its id only: not on its position, nor on the other rows
    _, more_validation = split_examples(make_examples(1500)[::-1], 0.2, seed=0)
    assert {e.id for e in validation} == {e.id for e in more_validation if int(e.id[1:]) < 1000}
    assert split_examples(examples, 0.0, seed=0) == (tuple(examples), ())
    with pytest.raises(ValueError, match="validation_fraction"):
        split_examples(examples, 1.0, seed=0)


def take(iterator, n):
    return [tuple(e.id for e in next(iterator)) for _ in range(n)]


def test_each_epoch_is_a_fresh_permutation_without_repeats():
    examples = make_examples(10)
    iterator = BatchIterator(examples, batch_size=3, seed=7)
    assert iterator.batches_per_epoch == 3  # one example is left out of each epoch
    epochs = [sum(take(iterator, 3), ()) for _ in range(4)]
    for ids in epochs:
        assert len(ids) == len(set(ids)) == 9
    assert len(set(epochs)) == 4  # a different order every epoch
    assert iterator.state == IteratorState(epoch=4, position=0)
    again = BatchIterator(examples, batch_size=3, seed=7)
    assert sum(take(again, 3), ()) == epochs[0]
    assert sum(take(BatchIterator(examples, 3, seed=8), 3), ()) != epochs[0]


def test_unshuffled_iterator_walks_the_file_order():
    iterator = BatchIterator(make_examples(5), batch_size=2, shuffle=False)
    assert take(iterator, 3) == [("e0", "e1"), ("e2", "e3"), ("e0", "e1")]


def test_resume_from_a_saved_state_continues_exactly():
    examples = make_examples(23)
    straight = BatchIterator(examples, batch_size=4, seed=3)
    expected = take(straight, 12)  # crosses two epoch boundaries (5 batches per epoch)

    first = BatchIterator(examples, batch_size=4, seed=3)
    head = take(first, 7)
    saved = first.state_dict()
    assert saved == {"epoch": 1, "position": 2, "num_examples": 23, "seed": 3}
    resumed = BatchIterator(examples, batch_size=4, seed=3)
    resumed.restore(saved)
    assert head + take(resumed, 5) == expected


def test_restore_refuses_a_state_of_other_data():
    iterator = BatchIterator(make_examples(10), batch_size=2, seed=0)
    with pytest.raises(ValueError, match="num_examples=11"):
        iterator.restore({"epoch": 0, "position": 1, "num_examples": 11, "seed": 0})
    with pytest.raises(ValueError, match="seed=5"):
        iterator.restore({"epoch": 0, "position": 1, "num_examples": 10, "seed": 5})
    with pytest.raises(ValueError, match="invalid iterator state"):
        iterator.restore({"epoch": 0, "position": 5})


def test_processes_take_disjoint_slices_of_the_same_global_batch():
    examples = make_examples(30)
    single = BatchIterator(examples, batch_size=6, seed=1)
    parts = [BatchIterator(examples, batch_size=6, seed=1, num_processes=3, process_index=i) for i in range(3)]
    for _ in range(12):  # past an epoch boundary (5 batches per epoch)
        slices = [next(p) for p in parts]
        assert [len(s) for s in slices] == [2, 2, 2]
        assert sum(slices, ()) == next(single)
    assert {p.state for p in parts} == {single.state}


def test_iterator_argument_errors():
    examples = make_examples(8)
    with pytest.raises(ValueError, match="multiple of num_processes"):
        BatchIterator(examples, batch_size=3, num_processes=2)
    with pytest.raises(ValueError, match="process_index"):
        BatchIterator(examples, batch_size=4, num_processes=2, process_index=2)
    with pytest.raises(ValueError, match="cannot fill one batch"):
        BatchIterator(examples, batch_size=9)


def test_shard_splits_a_full_pass_across_processes():
    examples = make_examples(7)
    shards = [shard(examples, 3, i) for i in range(3)]
    assert [len(s) for s in shards] == [3, 2, 2]
    assert sorted(e.id for s in shards for e in s) == sorted(e.id for e in examples)
