"""Training records and their collation into bucketed numpy arrays."""

import numpy as np
import pytest

from herl_jax.herl import TrainingRecord, collate

PAD = 0
RECORDS = [
    TrainingRecord((1, 2, 3), (4, 5), advantage=0.5, reward=1.0, sampler_logprobs=(-0.1, -0.2)),
    TrainingRecord((6,), (7, 8, 9, 10), advantage=-1.0, reward=0.0),
    TrainingRecord((11, 12, 13, 14, 15), (16,), advantage=0.25, reward=0.5, is_revision=True),
]


def test_a_record_is_its_context_then_its_response():  # collate's loss_mask: the test below
    rec = RECORDS[0]
    assert rec.token_ids == (1, 2, 3, 4, 5)
    with pytest.raises(ValueError):
        TrainingRecord((1,), (), advantage=0.0, reward=0.0)
    with pytest.raises(ValueError):
        TrainingRecord((1,), (2, 3), advantage=0.0, reward=0.0, sampler_logprobs=(-1.0,))


def test_rows_are_context_then_response_right_padded():
    batch = collate(RECORDS, pad_id=PAD, bucket_size=4, batch_size=4)
    assert batch["input_ids"].shape == (4, 8)  # longest row 6 -> 8, one padding row
    for key in ("positions", "attention_mask", "targets", "loss_mask", "sampler_logprobs", "sampler_mask"):
        assert batch[key].shape == (4, 8), key
    assert batch["input_ids"].dtype == np.int32 and batch["loss_mask"].dtype == bool
    assert batch["input_ids"][0].tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    assert batch["positions"][0, :5].tolist() == [0, 1, 2, 3, 4]
    for b, rec in enumerate(RECORDS):
        mask = batch["loss_mask"][b]
        c = len(rec.context_ids)
        # hidden state t predicts targets[t] = input_ids[t + 1]; the loss sees the response only
        assert np.flatnonzero(mask).tolist() == list(range(c - 1, c - 1 + len(rec.response_ids)))
        assert batch["targets"][b][mask].tolist() == list(rec.response_ids)
        assert batch["input_ids"][b][1:][mask[:-1]].tolist() == list(rec.response_ids)
    assert batch["sampler_logprobs"][0][batch["loss_mask"][0]].tolist() == pytest.approx([-0.1, -0.2])
    assert batch["sampler_mask"].sum(1).tolist() == [2, 0, 0, 0]
    np.testing.assert_allclose(batch["advantages"], [0.5, -1.0, 0.25, 0.0])
    assert batch["is_revision"].tolist() == [False, False, True, False]
    assert not batch["attention_mask"][3].any() and not batch["loss_mask"][3].any()


def test_bucketing_keeps_shapes_fixed():
    short = [TrainingRecord((1,), (2,), advantage=0.0, reward=0.0)]
    assert collate(short, pad_id=PAD, bucket_size=16)["input_ids"].shape == (1, 16)
    assert collate(RECORDS, pad_id=PAD, bucket_size=16)["input_ids"].shape == (3, 16)
    with pytest.raises(ValueError):
        collate(RECORDS, pad_id=PAD, batch_size=2)
