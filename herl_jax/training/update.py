"""Host side of a policy update: PPO mini-batches and epochs over one RL step's collated batch."""

from __future__ import annotations

import jax
import numpy as np

from herl_jax.training.train_step import Learner, TrainState


def default_config():
    """The ``ppo`` sub-config (an ml_collections ConfigDict). Sizes count sequences (rows)."""
    from ml_collections import ConfigDict  # lazy: host-only dependency

    return ConfigDict(
        dict(
            mini_batch_size=512,  # rows per optimizer step: the paper's 64 prompts x (7 + 1) members
            micro_batch_size=8,  # rows per forward/backward; each micro-batch is trimmed to its own length
            epochs=1,  # passes over the batch per RL step (PPO epochs; verl's default 1)
            seed=0,  # shuffling: each update seeds its RNG with (seed, optimizer step)
            temperature=1.0,  # the sampling temperature; divides the logits
            logprob_chunk_size=128,  # positions per LM-head chunk
        )
    )


def update_policy(
    state: TrainState,
    batch: dict[str, np.ndarray],
    learner: Learner,
    cfg,
    ref_params=None,
    bucket_size: int | None = None,
) -> tuple[TrainState, dict[str, float]]:
    """Runs ``cfg.epochs`` shuffled passes of mini-batch steps over ``batch``; returns the new state.

    batch: a ``collate`` dict of numpy arrays with B rows, B a multiple of ``cfg.mini_batch_size`` (pad
    with ``collate(..., batch_size=...)``; padding rows carry no loss). Old log-probs (``state.params``)
    and reference log-probs (``ref_params``; None when the loss has no KL term) are computed for every
    row before the first update. ``ref_params`` must not share buffers with ``state``, which each step
    donates. ``bucket_size``: micro-batches of rows of similar length, each trimmed to its own width
    (see ``Learner.train_step``). Metrics: the mean over the steps of each step metric (ratio_max: the max).
    """
    rows, size = batch["input_ids"].shape[0], cfg.mini_batch_size
    if rows % size:
        raise ValueError(f"{rows} rows do not split into mini-batches of {size}; pad with collate(batch_size=...)")

    def logprobs_of(params):
        if bucket_size:  # micro-batches of similar lengths over the whole batch
            return np.asarray(learner.compute_logprobs(params, batch, bucket_size))
        chunks = [{k: v[i : i + size] for k, v in batch.items()} for i in range(0, rows, size)]
        return np.concatenate(jax.device_get([learner.compute_logprobs(params, c) for c in chunks]))

    old_logprobs = logprobs_of(state.params)
    ref_logprobs = None if ref_params is None else logprobs_of(ref_params)

    rng = np.random.default_rng([cfg.seed, int(state.step)])
    step_metrics = []
    for _ in range(cfg.epochs):
        order = rng.permutation(rows)
        for i in range(0, rows, size):
            idx = order[i : i + size]
            minibatch = {k: v[idx] for k, v in batch.items()}
            ref = None if ref_logprobs is None else ref_logprobs[idx]
            state, metrics = learner.train_step(state, minibatch, old_logprobs[idx], ref, bucket_size)
            step_metrics.append(metrics)

    step_metrics = jax.device_get(step_metrics)
    return state, {
        k: float(np.max([m[k] for m in step_metrics]) if k == "ratio_max" else np.mean([m[k] for m in step_metrics]))
        for k in step_metrics[0]
    }
