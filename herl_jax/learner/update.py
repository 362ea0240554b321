"""Host side of a policy update: PPO mini-batches and epochs over one RL step's collated batch."""

from __future__ import annotations

import jax
import numpy as np

from herl_jax.learner.seeds import shuffle_rng
from herl_jax.learner.learner import Learner, TrainState


def update_policy(
    state: TrainState,
    batch: dict[str, np.ndarray],
    learner: Learner,
    cfg,
    ref_params=None,
    *,
    bucket_size: int,
) -> tuple[TrainState, dict[str, float]]:
    """Runs ``cfg.epochs`` shuffled passes of mini-batch steps over ``batch``; returns the new state.

    batch: a ``collate`` dict of numpy arrays with B rows, B a multiple of ``cfg.mini_batch_size`` (pad
    with ``collate(..., batch_size=...)``; padding rows carry no loss). Old log-probs (``state.params``)
    and reference log-probs (``ref_params``; None when the loss has no KL term) are computed for every
    row before the first update and stay on the device; each mini-batch gathers its rows there.
    ``ref_params`` must not share buffers with ``state``, which each step donates. ``bucket_size`` (the
    trainer's ``trainer.sequence_bucket``): micro-batches of rows of similar length, each trimmed to its
    longest row rounded up to a multiple of it (``learner.micro_batches``).
    Metrics: the mean over the steps of each step metric (ratio_max: the max; skipped_nonfinite: the sum,
    the number of optimizer steps whose non-finite update was skipped).
    """
    rows, size = batch["input_ids"].shape[0], cfg.mini_batch_size
    if rows % size:
        raise ValueError(f"{rows} rows do not split into mini-batches of {size}; pad with collate(batch_size=...)")

    # [rows, T] on the device, in micro-batches of similar lengths over the whole batch
    old_logprobs = learner.compute_logprobs(state.params, batch, bucket_size)
    ref_logprobs = None if ref_params is None else learner.compute_logprobs(ref_params, batch, bucket_size)

    rng = shuffle_rng(cfg.seed, int(state.step))
    step_metrics = []
    for _ in range(cfg.epochs):
        order = rng.permutation(rows)
        for i in range(0, rows, size):
            idx = order[i : i + size]
            minibatch = {k: v[idx] for k, v in batch.items()}
            old = learner.take_rows(old_logprobs, idx)
            ref = None if ref_logprobs is None else learner.take_rows(ref_logprobs, idx)
            state, metrics = learner.optimizer_step(state, minibatch, old, ref, bucket_size=bucket_size)
            step_metrics.append(metrics)

    step_metrics = jax.device_get(step_metrics)
    reduce = {"ratio_max": np.max, "skipped_nonfinite": np.sum}
    return state, {k: float(reduce.get(k, np.mean)([m[k] for m in step_metrics])) for k in step_metrics[0]}
