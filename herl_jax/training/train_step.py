"""The jitted device side of a policy update: log-probs before the update, and one optimizer step.

A ``Learner`` fixes the static parts (the model's graphdef, the optax transform, the ``StepConfig``)
and exposes two jitted functions that take the parameters as arguments:

  compute_logprobs(params, batch) -> [B, W]      old / reference log-probs, before the update
  train_step(state, minibatch, old_logprobs, ref_logprobs=None) -> (state, metrics)

Batches are ``herl_jax.herl.collate`` dicts: input_ids, positions, attention_mask [B, T]; targets,
loss_mask, sampler_logprobs, sampler_mask [B, W]; advantages, is_revision [B]. W == T for the "right"
layout; W < T for "left_context", whose targets are scored by hidden[:, T-W-1 : T-1].

Sharding: when the model's parameters are on a mesh (``herl_jax.parallel``), the state is kept laid out
like them (optimizer moments mirror the parameters), each micro-batch's rows are split over the batch axes,
and log-probs and metrics come back replicated. Numpy batches are the global batch; in a multi-process run
process 0's copy is broadcast, so all processes step on the same data. Global jax.Arrays (e.g. from
``parallel.local_batch_to_global``) are used as they are.

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
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from herl_jax import parallel
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


def _split_micro_batches(tree, micro_batch_size: int, mesh: Mesh | None, rules: parallel.Rules):
    """Reshapes every [M, ...] leaf to [M // m, m, ...], m = min(micro_batch_size, M), each micro-batch's
    m rows split over the mesh's batch axes."""
    rows = jax.tree.leaves(tree)[0].shape[0]
    m = min(micro_batch_size, rows)
    if rows % m:
        raise ValueError(f"a mini-batch of {rows} rows does not split into micro-batches of {m}")

    def split(x):
        x = x.reshape(rows // m, m, *x.shape[1:])
        return parallel.constrain(x, (None, "batch") + (None,) * (x.ndim - 2), mesh, rules)

    return jax.tree.map(split, tree)


def _cast(params: nnx.State, dtype) -> nnx.State:
    return jax.tree.map(lambda p: p.astype(dtype), params)


def compute_logprobs(graphdef: nnx.GraphDef, cfg: StepConfig, compute_dtype, mesh: Mesh | None,
                     rules: parallel.Rules, params: nnx.State, batch: Batch) -> jax.Array:
    """Per-token log-probs [B, W] float32 of ``batch["targets"]``, one micro-batch at a time."""
    params = _cast(params, compute_dtype)

    def one_micro_batch(micro):
        model = nnx.merge(graphdef, params)
        logp, _ = token_logprobs(response_hidden(model, micro), model.lm_head_kernel(), micro["targets"],
                                 temperature=cfg.temperature, chunk_size=cfg.logprob_chunk_size)
        return logp

    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "positions", "targets")}
    logp = jax.lax.map(one_micro_batch, _split_micro_batches(inputs, cfg.micro_batch_size, mesh, rules))
    return logp.reshape(batch["targets"].shape)


def train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    cfg: StepConfig,
    compute_dtype,
    mesh: Mesh | None,
    rules: parallel.Rules,
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
        ({k: minibatch[k] for k in keys}, old_logprobs, ref_logprobs), cfg.micro_batch_size, mesh, rules
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

    Built from a model only for its graphdef (structure and config), its compute dtype
    (``model.cfg.dtype``) and where its parameters are placed (a mesh, laid out by ``rules``, or one
    device); parameters always travel as arguments. ``train_step`` donates its state.
    Each function compiles once per batch shape (collate buckets the lengths).
    """

    def __init__(self, model, tx: optax.GradientTransformation, cfg: StepConfig,
                 rules: parallel.Rules = parallel.DEFAULT_RULES):
        self.graphdef, params = nnx.split(model, nnx.Param)
        self.tx = tx
        self.cfg = cfg
        self.mesh = parallel.mesh_of(params)
        self.state_shardings = None
        logprobs_out, step_out, init_out = {}, {}, {}  # jit keyword arguments fixing output layouts on a mesh
        if self.mesh is not None:
            replicated = NamedSharding(self.mesh, PartitionSpec())
            opt_state = jax.eval_shape(tx.init, params)
            self.state_shardings = TrainState(parallel.tree_shardings(params, self.mesh, rules),
                                              parallel.tree_shardings(opt_state, self.mesh, rules), replicated)
            logprobs_out = dict(out_shardings=replicated)
            step_out = dict(out_shardings=(self.state_shardings, replicated))
            init_out = dict(out_shardings=self.state_shardings)
        where = (jnp.dtype(model.cfg.dtype), self.mesh, rules)
        self._compute_logprobs = jax.jit(functools.partial(compute_logprobs, self.graphdef, cfg, *where),
                                         **logprobs_out)
        self._train_step = jax.jit(functools.partial(train_step, self.graphdef, tx, cfg, *where), donate_argnums=0,
                                   **step_out)
        self._init_state = jax.jit(functools.partial(_init_state, tx), **init_out)

    def compute_logprobs(self, params: nnx.State, batch: Batch) -> jax.Array:
        """Per-token log-probs [B, W] float32 of ``batch["targets"]`` under ``params``."""
        return self._compute_logprobs(params, _same_on_every_process(batch))

    def train_step(self, state: TrainState, minibatch: Batch, old_logprobs, ref_logprobs=None):
        """One optimizer step on a mini-batch; returns (new state, metrics). Donates ``state``."""
        minibatch, old_logprobs, ref_logprobs = _same_on_every_process((minibatch, old_logprobs, ref_logprobs))
        return self._train_step(state, minibatch, old_logprobs, ref_logprobs)

    def init_state(self, model) -> TrainState:
        """A fresh state holding a float32 copy of the model's parameters (the model stays usable), laid out
        like the model's parameters."""
        _, params = nnx.split(model, nnx.Param)
        return self._init_state(params)


def _init_state(tx: optax.GradientTransformation, params: nnx.State) -> TrainState:
    # A copy even when already float32: jit would hand back the input arrays, and train_step donates them.
    params = jax.tree.map(lambda p: jnp.array(p, dtype=jnp.float32, copy=True), params)
    return TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))


def _same_on_every_process(tree):
    """Numpy leaves replaced by process 0's values in a multi-process run (jax.Arrays are left alone), so
    host-side differences between processes cannot desynchronize the step."""
    if jax.process_count() == 1:
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    host = [i for i, x in enumerate(leaves) if isinstance(x, np.ndarray)]
    sent = multihost_utils.broadcast_one_to_all([leaves[i] for i in host])
    for i, value in zip(host, sent):
        leaves[i] = np.asarray(value, dtype=leaves[i].dtype)  # the broadcast sums, which promotes bools
    return jax.tree.unflatten(treedef, leaves)
