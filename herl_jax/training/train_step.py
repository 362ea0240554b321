"""The jitted device side of a policy update: log-probs before the update, and one optimizer step.

A ``Learner`` fixes the static parts (the model's graphdef, the optax transform, the ``StepConfig``)
and exposes two jitted functions that take the parameters as arguments:

  compute_logprobs(params, batch) -> [B, W]      old / reference log-probs, before the update
  train_step(state, minibatch, old_logprobs, ref_logprobs=None) -> (state, metrics)

Batches are ``herl_jax.herl.collate`` dicts: input_ids, positions, attention_mask [B, T]; targets,
loss_mask, sampler_logprobs, sampler_mask [B, W]; advantages, is_revision [B]. W == T for the "right"
layout; W < T for "left_context", whose targets are scored by hidden[:, T-W-1 : T-1].

Precision: master parameters and optimizer state are float32. The model computes in its
``ModelConfig.dtype``: with "bfloat16" the step casts the parameters to bf16 once, differentiates the
loss with respect to that copy, and accumulates the gradient in float32 (the same gradient as casting
inside every micro-batch's loss, without re-casting per micro-batch).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from herl_jax.training.logprobs import token_logprobs
from herl_jax.training.loss import LossConfig, Normalizer, mini_batch_normalizer, policy_loss

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static settings of the jitted functions (hashable)."""

    loss: LossConfig = LossConfig()
    micro_batch_size: int = 8  # rows per forward/backward; a mini-batch is split into micro-batches
    temperature: float = 1.0  # divides the logits, as in sampling
    logprob_chunk_size: int = 128  # positions per LM-head chunk (see token_logprobs)

    @classmethod
    def from_config(cls, cfg) -> StepConfig:
        """From the ``train`` config: its ``loss`` and ``ppo`` sub-configs."""
        return cls(
            loss=LossConfig.from_config(cfg.loss),
            micro_batch_size=cfg.ppo.micro_batch_size,
            temperature=cfg.ppo.temperature,
            logprob_chunk_size=cfg.ppo.logprob_chunk_size,
        )


class TrainState(NamedTuple):
    """params: nnx.State of float32 parameters; opt_state: the optax state; step: int32 scalar."""

    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array


def response_hidden(model, batch: Batch) -> jax.Array:
    """Final hidden states [B, W, D] aligned with ``batch["targets"]`` [B, W] (either layout)."""
    hidden, _ = model.hidden_states(batch["input_ids"], batch["attention_mask"], batch["positions"])
    t, w = batch["input_ids"].shape[1], batch["targets"].shape[1]
    return hidden if w == t else hidden[:, t - w - 1 : t - 1]


def micro_batch_loss(
    hidden: jax.Array,
    lm_head: jax.Array,
    micro: Batch,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array | None,
    normalizer: Normalizer,
    cfg: StepConfig,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss of one micro-batch from its response hidden states [b, W, D] and the LM head [D, V].

    old_logprobs, ref_logprobs: [b, W]. normalizer: of the whole mini-batch. See ``policy_loss``.
    """
    logp, entropy = token_logprobs(hidden, lm_head, micro["targets"], temperature=cfg.temperature,
                                   chunk_size=cfg.logprob_chunk_size, with_entropy=True)
    return policy_loss(logp, old_logprobs, micro["advantages"], micro["is_revision"], micro["loss_mask"],
                       normalizer, cfg.loss, ref_logprobs=ref_logprobs, entropy=entropy)


def _split_micro_batches(tree, micro_batch_size: int):
    """Reshapes every [M, ...] leaf to [M // m, m, ...], m = min(micro_batch_size, M)."""
    rows = jax.tree.leaves(tree)[0].shape[0]
    m = min(micro_batch_size, rows)
    if rows % m:
        raise ValueError(f"a mini-batch of {rows} rows does not split into micro-batches of {m}")
    return jax.tree.map(lambda x: x.reshape(rows // m, m, *x.shape[1:]), tree)


def _cast(params: nnx.State, dtype) -> nnx.State:
    return jax.tree.map(lambda p: p.astype(dtype), params)


def compute_logprobs(graphdef: nnx.GraphDef, cfg: StepConfig, compute_dtype, params: nnx.State,
                     batch: Batch) -> jax.Array:
    """Per-token log-probs [B, W] float32 of ``batch["targets"]``, one micro-batch at a time."""
    params = _cast(params, compute_dtype)

    def one_micro_batch(micro):
        model = nnx.merge(graphdef, params)
        logp, _ = token_logprobs(response_hidden(model, micro), model.lm_head_kernel(), micro["targets"],
                                 temperature=cfg.temperature, chunk_size=cfg.logprob_chunk_size)
        return logp

    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "positions", "targets")}
    logp = jax.lax.map(one_micro_batch, _split_micro_batches(inputs, cfg.micro_batch_size))
    return logp.reshape(batch["targets"].shape)


def train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    cfg: StepConfig,
    compute_dtype,
    state: TrainState,
    minibatch: Batch,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on one mini-batch [M, ...]: gradients accumulated over micro-batches.

    old_logprobs, ref_logprobs: [M, W] from ``compute_logprobs`` before the update (ref may be None
    when kl_coef is 0). Metrics (float32 scalars) are the mini-batch's: the loss parts and ratio / clip
    statistics of ``policy_loss``, plus grad_norm (before clipping) and sampler_logprob_gap, the mean
    |sampler_logprob − old_logprob| over sampler_mask tokens (0 when no row carries sampler log-probs).
    """
    normalizer = mini_batch_normalizer(minibatch["loss_mask"], minibatch["is_revision"])
    keys = ("input_ids", "attention_mask", "positions", "targets", "loss_mask", "advantages", "is_revision")
    micro_batches = _split_micro_batches(
        ({k: minibatch[k] for k in keys}, old_logprobs, ref_logprobs), cfg.micro_batch_size
    )
    compute_params = _cast(state.params, compute_dtype)

    def loss_fn(params, micro, old, ref):
        model = nnx.merge(graphdef, params)
        return micro_batch_loss(response_hidden(model, micro), model.lm_head_kernel(), micro, old, ref,
                                normalizer, cfg)

    def accumulate(grad_sum, xs):
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(compute_params, *xs)
        return jax.tree.map(lambda acc, g: acc + g.astype(jnp.float32), grad_sum, grads), metrics

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    grads, per_micro = jax.lax.scan(accumulate, zeros, micro_batches)
    # Every metric is a micro-batch's share of the mini-batch value, except ratio_max (see policy_loss).
    metrics = {k: (v.max() if k == "ratio_max" else v.sum()) for k, v in per_micro.items()}

    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    sampler_mask = minibatch["sampler_mask"]
    gap = jnp.abs(minibatch["sampler_logprobs"] - old_logprobs)
    metrics["grad_norm"] = optax.global_norm(grads)
    metrics["sampler_logprob_gap"] = jnp.where(sampler_mask, gap, 0.0).sum() / jnp.maximum(sampler_mask.sum(), 1)
    return TrainState(params, opt_state, state.step + 1), metrics


class Learner:
    """The jitted functions for one model architecture, optimizer and ``StepConfig``:

      learner.compute_logprobs(params, batch) -> [B, W]
      learner.train_step(state, minibatch, old_logprobs, ref_logprobs=None) -> (state, metrics)

    Built from a model only for its graphdef (structure and config) and its compute dtype
    (``model.cfg.dtype``); parameters always travel as arguments. ``train_step`` donates its state.
    Each function compiles once per batch shape (collate buckets the lengths).
    """

    def __init__(self, model, tx: optax.GradientTransformation, cfg: StepConfig):
        self.graphdef, _ = nnx.split(model, nnx.Param)
        self.tx = tx
        self.cfg = cfg
        compute_dtype = jnp.dtype(model.cfg.dtype)
        self.compute_logprobs = jax.jit(functools.partial(compute_logprobs, self.graphdef, cfg, compute_dtype))
        self.train_step = jax.jit(functools.partial(train_step, self.graphdef, tx, cfg, compute_dtype),
                                  donate_argnums=0)

    def init_state(self, model) -> TrainState:
        """A fresh state holding a float32 copy of the model's parameters (the model stays usable)."""
        _, params = nnx.split(model, nnx.Param)
        params = jax.tree.map(lambda p: jnp.array(p, dtype=jnp.float32, copy=True), params)
        return TrainState(params, self.tx.init(params), jnp.zeros((), jnp.int32))
