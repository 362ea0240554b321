"""Host side of the update's batching: a mini-batch's rows cut into micro-batches, each trimmed to its own width.

Rows of similar length go together, so rollouts are not padded to the length of a long revise prompt, and
every micro-batch width is a multiple of the bucket (a bounded number of compiled shapes).
"""

from __future__ import annotations

import numpy as np

from herl_jax.buckets import round_up

ROW_KEYS_BY_COLUMN = ("input_ids", "positions", "attention_mask", "targets", "loss_mask", "sampler_logprobs",
                      "sampler_mask")  # [B, T] arrays: trimmed to the micro-batch's width


def micro_batches(batch: dict[str, np.ndarray], micro_batch_size: int, bucket_size: int,
                  rows_together: int = 1) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Splits a host batch of M rows (a ``collate`` dict) into micro-batches of m = min(micro_batch_size, M) rows.

    Returns [(rows [m] int, micro-batch dict)]: the rows sorted by attended length (stable), each micro-batch
    trimmed to its longest row rounded up to ``bucket_size`` (at most T). Keys other than the [B, T] ones are
    taken by row only. ``rows_together`` > 1: rows come in consecutive blocks of that many (a DPO pair) that stay
    together and in order, blocks sorted by their longest row.
    """
    size, full = batch["attention_mask"].shape
    m = min(micro_batch_size, size)
    if size % m or m % rows_together:
        raise ValueError(f"a mini-batch of {size} rows does not split into micro-batches of {m} rows in blocks of "
                         f"{rows_together}")
    used = np.asarray(batch["attention_mask"]).astype(bool).sum(axis=1)
    blocks = np.argsort(used.reshape(-1, rows_together).max(axis=1), kind="stable")
    order = (blocks[:, None] * rows_together + np.arange(rows_together)).reshape(-1)
    out = []
    for start in range(0, size, m):
        rows = order[start : start + m]
        width = min(full, max(bucket_size, round_up(used[rows].max(), bucket_size)))
        out.append((rows, {k: v[rows][:, :width] if k in ROW_KEYS_BY_COLUMN else v[rows] for k, v in batch.items()}))
    return out
