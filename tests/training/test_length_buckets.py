"""Micro-batches of similar-length rows, each trimmed to its own width: the same step, less padding."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from herl_jax.herl import TrainingRecord, collate
from herl_jax.learner.micro_batches import micro_batches
from tests.training.tiny import PAD, STEP, compilations, full_width_loss

BUCKET = 8


def _mixed_records(seed: int):
    """8 records: 6 short rollouts and 2 revisions under a long context (as revise prompts are)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(8):
        long = i in (2, 5)
        context = rng.integers(1, 32, size=rng.integers(20, 30) if long else rng.integers(2, 5))
        response = rng.integers(1, 32, size=rng.integers(2, 6))
        sampler = -rng.uniform(0.5, 3.0, size=len(response)) if i % 2 else None
        records.append(TrainingRecord(context, response, advantage=float(rng.normal()), reward=0.0,
                                      is_revision=long, sampler_logprobs=sampler))
    return records


def _off_policy(logp, seed):
    return (logp + np.random.default_rng(seed).normal(size=logp.shape) * 0.3).astype(np.float32)


def test_trimmed_micro_batches_cover_every_token():
    batch = collate(_mixed_records(0), pad_id=PAD, bucket_size=BUCKET)
    pieces = micro_batches(batch, STEP.micro_batch_size, BUCKET)
    seen = np.concatenate([rows for rows, _ in pieces])
    assert sorted(seen.tolist()) == list(range(8))
    widths = [micro["input_ids"].shape[1] for _, micro in pieces]
    assert min(widths) < batch["input_ids"].shape[1] == max(widths)  # short rows lost their padding
    for rows, micro in pieces:  # nothing real was cut: every row keeps all its tokens and targets
        assert micro["attention_mask"].sum() == batch["attention_mask"][rows].sum()
        assert micro["loss_mask"].sum() == batch["loss_mask"][rows].sum()
        np.testing.assert_array_equal(micro["targets"][micro["loss_mask"]],
                                      batch["targets"][rows][batch["loss_mask"][rows]])


def test_bucketed_step_equals_the_full_width_step(model, learner):
    """Log-probs, gradient and metrics of the trimmed micro-batches equal those of one direct full-width
    forward of the whole batch (``full_width_loss``)."""
    batch = collate(_mixed_records(1), pad_id=PAD, bucket_size=BUCKET)
    params = learner.init_state(model).params
    logits = np.asarray(model(jnp.asarray(batch["input_ids"]), jnp.asarray(batch["attention_mask"]),
                              jnp.asarray(batch["positions"])), np.float64) / STEP.temperature
    logits -= logits.max(-1, keepdims=True)
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    full_logp = np.take_along_axis(logp_all, batch["targets"][..., None], -1)[..., 0]  # float64, full width
    bucketed_logp = np.asarray(learner.compute_logprobs(params, batch, BUCKET))
    mask = batch["loss_mask"]
    np.testing.assert_allclose(bucketed_logp[mask], full_logp[mask], rtol=1e-5, atol=1e-6)

    old, ref = _off_policy(full_logp, 2), _off_policy(full_logp, 3)
    direct_loss = full_width_loss(learner.graphdef, batch, old, ref)
    (_, full_metrics), full_grads = jax.jit(jax.value_and_grad(direct_loss, has_aux=True))(params)
    sampled = batch["sampler_mask"]
    full_metrics.update(grad_norm=optax.global_norm(full_grads), skipped_nonfinite=0.0,
                        sampler_logprob_gap=np.abs(batch["sampler_logprobs"] - old)[sampled].mean())
    bucketed_state, bucketed_metrics = learner.optimizer_step(learner.init_state(model), batch, old, ref,
                                                              bucket_size=BUCKET)
    # The recording optimizer keeps the gradient it was given as its state.
    for a, b in zip(jax.tree.leaves(bucketed_state.opt_state), jax.tree.leaves(full_grads), strict=True):
        b = np.asarray(b)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
    assert bucketed_metrics.keys() == full_metrics.keys()
    for key, value in full_metrics.items():
        np.testing.assert_allclose(float(bucketed_metrics[key]), float(value), rtol=1e-5, atol=1e-7, err_msg=key)


def test_rows_of_known_widths_do_not_recompile(model, learner):
    first = collate(_mixed_records(4), pad_id=PAD, bucket_size=BUCKET)
    # Same lengths, other tokens and advantages: the same micro-batch widths.
    rng = np.random.default_rng(5)
    second = dict(first, input_ids=np.where(first["attention_mask"], rng.integers(1, 32, first["input_ids"].shape),
                                            PAD).astype(np.int32),
                  advantages=rng.normal(size=8).astype(np.float32))
    logp = np.asarray(learner.compute_logprobs(learner.init_state(model).params, first, bucket_size=BUCKET))
    learner.optimizer_step(learner.init_state(model), first, logp, logp, bucket_size=BUCKET)
    state = learner.init_state(model)

    with compilations() as events:
        logp = learner.compute_logprobs(state.params, second, bucket_size=BUCKET)
        state, _ = learner.optimizer_step(state, second, logp, logp, bucket_size=BUCKET)
        jax.block_until_ready(state)
    assert events == []
