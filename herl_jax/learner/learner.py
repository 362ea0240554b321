"""The device side of a policy update: log-probs before the update, and one optimizer step.

A ``Learner`` fixes the static parts (the model's graphdef, the optax transform, the ``LearnerConfig``)
and exposes two functions that take the parameters as arguments:

  compute_logprobs(params, batch, bucket_size) -> [B, T]   old / reference log-probs (on the device)
  optimizer_step(state, minibatch, old_logprobs, ref_logprobs=None, *, bucket_size) -> (state, metrics)

The loss is the config's objective (``LearnerConfig.objective``): the HeRL policy loss (loss.py) on a step's
groups, or an offline baseline (offline_loss.py: SFT, which needs no old or reference log-probs, or DPO, which
needs the reference's and whose rows come in (chosen, rejected) pairs, kept in one micro-batch).

Batches are ``herl_jax.herl.collate`` dicts: input_ids, positions, attention_mask, targets, loss_mask,
sampler_logprobs, sampler_mask [B, T]; advantages, is_revision [B]. Hidden state t scores targets[t].
Old and reference log-probs stay on the device from ``compute_logprobs`` through every optimizer step:
the update gathers each micro-batch's rows and columns of them there (``take``).

Micro-batches (``learner.micro_batches``): the rows are sorted by length and cut into micro-batches of
``micro_batch_size`` rows, each trimmed to its own longest row rounded up to ``bucket_size`` (the trainer's
``trainer.sequence_bucket``), so rollouts are not padded to the length of a long revise prompt. Log-probs
are one jitted forward per micro-batch; a step is one jitted forward/backward per micro-batch, whose
float32 gradient is added to a running sum, then one jitted optimizer step applying it. Every loss term
is normalized by the whole mini-batch (``mini_batch_normalizer``), so the sum is the mini-batch gradient
however the rows are grouped; except under ``agg_mode="micro_token_mean"`` (public code), the mean of
each micro-batch's own token mean, over the micro-batches holding a loss token: there these groups (rows
of similar length) shape the loss. Compiles once per micro-batch width.

Sharding: when the model's parameters are on a mesh (``herl_jax.parallel``), the state is kept laid out
like them (optimizer moments mirror the parameters), each micro-batch's rows are split over the batch axes,
and log-probs and metrics come back replicated. Batches are host (numpy) arrays of the global batch; in a
multi-process run process 0's copy is broadcast, so all processes step on the same data.

Precision: master parameters and optimizer state are float32. The model computes in its
``ModelConfig.dtype``: with "bfloat16" the step casts the parameters to bf16 once per mini-batch,
differentiates the loss with respect to that copy, and accumulates the gradient in float32.
"""

from __future__ import annotations

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
from herl_jax.learner.logprobs import token_logprobs
from herl_jax.learner.config import LearnerConfig
from herl_jax.learner.loss import Normalizer, mini_batch_normalizer, policy_loss
from herl_jax.learner.offline_loss import dpo_loss, sft_loss
from herl_jax.learner.micro_batches import micro_batches

Batch = dict[str, jax.Array]


class TrainState(NamedTuple):
    """params: nnx.State of float32 parameters; opt_state: the optax state; step: int32 scalar."""

    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array


def response_hidden(model, batch: Batch, mesh: Mesh | None, rules: parallel.Rules) -> jax.Array:
    """Final hidden states [B, T, D], rows split over the batch axes; state t scores ``batch["targets"][:, t]``.

    ``collate`` right-pads every row (tokens, then padding; filler rows all padding), and only real tokens'
    states are scored (the loss mask lies inside each row's tokens), so the forward is declared right-padded:
    cuDNN attention then takes a causal mask type and row lengths (``Decoder.hidden_states``)."""
    hidden, _ = model.hidden_states(batch["input_ids"], batch["attention_mask"], batch["positions"],
                                    right_padded=True, mesh=mesh, rules=rules)
    return hidden


def micro_batch_loss(
    hidden: jax.Array,
    lm_head: jax.Array,
    micro: Batch,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array | None,
    normalizer: Normalizer,
    cfg: LearnerConfig,
    mesh: Mesh | None = None,
    rules: parallel.Rules = parallel.DEFAULT_RULES,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss of one micro-batch from its response hidden states [b, T, D] and the LM head [D, V]: the
    objective's (``policy_loss``, ``sft_loss`` or ``dpo_loss``).

    old_logprobs, ref_logprobs: [b, T] (None where the objective needs none). normalizer: of the whole mini-batch.
    """
    objective = cfg.objective
    logp, entropy = token_logprobs(hidden, lm_head, micro["targets"], temperature=cfg.temperature,
                                   chunk_size=cfg.logprob_chunk_size, with_entropy=not objective.offline,
                                   mesh=mesh, rules=rules)
    if objective.kind == "sft":
        return sft_loss(logp, micro["loss_mask"], normalizer)
    if objective.kind == "dpo":
        return dpo_loss(logp, ref_logprobs, micro["loss_mask"], normalizer, objective.dpo_beta)
    return policy_loss(logp, old_logprobs, micro["advantages"], micro["is_revision"], micro["loss_mask"],
                       normalizer, cfg.loss, ref_logprobs=ref_logprobs, entropy=entropy)


def _cast(params: nnx.State, dtype) -> nnx.State:
    return jax.tree.map(lambda p: p.astype(dtype), params)


def _split_rows(tree, mesh: Mesh | None, rules: parallel.Rules):
    """Every [m, ...] leaf with its rows split over the mesh's batch axes."""
    return jax.tree.map(lambda x: parallel.constrain(x, ("batch",) + (None,) * (x.ndim - 1), mesh, rules), tree)


def compute_logprobs(graphdef: nnx.GraphDef, cfg: LearnerConfig, compute_dtype, mesh: Mesh | None,
                     rules: parallel.Rules, params: nnx.State, micro: Batch) -> jax.Array:
    """Per-token log-probs [m, W] float32 of one micro-batch's ``targets`` (input_ids, attention_mask,
    positions, targets: [m, W])."""
    model = nnx.merge(graphdef, _cast(params, compute_dtype))
    micro = _split_rows(micro, mesh, rules)
    logp, _ = token_logprobs(response_hidden(model, micro, mesh, rules), model.lm_head_kernel(), micro["targets"],
                             temperature=cfg.temperature, chunk_size=cfg.logprob_chunk_size, mesh=mesh, rules=rules)
    return logp


INPUT_KEYS = ("input_ids", "attention_mask", "positions")  # [B, T]
LOSS_KEYS = ("input_ids", "attention_mask", "positions", "targets", "loss_mask", "advantages", "is_revision")


def accumulate_gradients(
    graphdef: nnx.GraphDef,
    cfg: LearnerConfig,
    mesh: Mesh | None,
    rules: parallel.Rules,
    compute_params: nnx.State,
    grad_sum: nnx.State,
    micro: Batch,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array | None,
    normalizer: Normalizer,
) -> tuple[nnx.State, dict[str, jax.Array]]:
    """grad_sum + the float32 gradient of one micro-batch's share of the mini-batch loss, and the
    micro-batch's shares of the metrics. micro: [m, T] arrays; old / ref log-probs [m, T]."""
    micro, old_logprobs, ref_logprobs = _split_rows((micro, old_logprobs, ref_logprobs), mesh, rules)

    def loss_fn(params):
        model = nnx.merge(graphdef, params)
        return micro_batch_loss(response_hidden(model, micro, mesh, rules), model.lm_head_kernel(), micro,
                                old_logprobs, ref_logprobs, normalizer, cfg, mesh, rules)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(compute_params)
    return jax.tree.map(lambda acc, g: acc + g.astype(jnp.float32), grad_sum, grads), metrics


def apply_gradients(tx: optax.GradientTransformation, state: TrainState, grads: nnx.State,
                    loss: jax.Array) -> tuple[TrainState, jax.Array, jax.Array]:
    """One optimizer step with the mini-batch gradient, unless ``loss`` or the gradient's global norm is not
    finite: then the state is returned unchanged, bit for bit. Also returns the norm (before clipping) and
    whether the step was skipped (float32 1 / 0).

    A `lax.cond`, not a select of new and old values: the select keeps both alive, so XLA copies the donated
    state (1.4-2x the float32 parameters in temporaries); under the cond the step updates the state in place
    and holds one float32 copy of the parameters, the updates (herl_jax.memory_plan.optimizer_temporaries)."""
    grad_norm = optax.global_norm(grads)
    finite = jnp.isfinite(grad_norm) & jnp.isfinite(loss)

    def step(state: TrainState) -> TrainState:
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1)

    return jax.lax.cond(finite, step, lambda unchanged: unchanged, state), grad_norm, 1.0 - finite.astype(jnp.float32)


def sampler_logprob_gap(sampler_logprobs: jax.Array, sampler_mask: jax.Array, old_logprobs: jax.Array) -> jax.Array:
    """Mean |sampler log-prob − old log-prob| over ``sampler_mask`` tokens ([M, T] each; 0 when none)."""
    gap = jnp.where(sampler_mask, jnp.abs(sampler_logprobs - old_logprobs), 0.0)
    return gap.sum() / jnp.maximum(sampler_mask.sum(), 1)


def _take(x: jax.Array, rows: jax.Array, width: int) -> jax.Array:
    return x[rows, :width]


def _place(full: jax.Array, rows: jax.Array, piece: jax.Array) -> jax.Array:
    return full.at[rows, : piece.shape[1]].set(piece)


class Learner:
    """The jitted functions for one model architecture, optimizer and ``LearnerConfig`` (see the module
    docstring for ``compute_logprobs`` and ``optimizer_step``).

    Built from a model only for its graphdef (structure and config), its compute dtype
    (``model.cfg.dtype``) and where its parameters are placed (a mesh, laid out by ``rules``, or one
    device); parameters always travel as arguments. ``optimizer_step`` donates its state.
    """

    def __init__(self, model, tx: optax.GradientTransformation, cfg: LearnerConfig,
                 rules: parallel.Rules = parallel.DEFAULT_RULES):
        self.graphdef, params = nnx.split(model, nnx.Param)
        self.tx = tx
        self.cfg = cfg
        self.compute_dtype = jnp.dtype(model.cfg.dtype)
        self.mesh = parallel.mesh_of(params)
        self.state_shardings = None
        # jit keyword arguments fixing output layouts on a mesh
        logprobs_out, params_out, accumulate_out, apply_out, init_out = {}, {}, {}, {}, {}
        if self.mesh is not None:
            replicated = NamedSharding(self.mesh, PartitionSpec())
            opt_state = jax.eval_shape(tx.init, params)
            self.state_shardings = TrainState(parallel.tree_shardings(params, self.mesh, rules),
                                              parallel.tree_shardings(opt_state, self.mesh, rules), replicated)
            logprobs_out = dict(out_shardings=replicated)
            params_out = dict(out_shardings=self.state_shardings.params)
            accumulate_out = dict(out_shardings=(self.state_shardings.params, replicated))
            apply_out = dict(out_shardings=(self.state_shardings, replicated, replicated))
            init_out = dict(out_shardings=self.state_shardings)
        where = (self.mesh, rules)
        self._compute_logprobs = jax.jit(
            functools.partial(compute_logprobs, self.graphdef, cfg, self.compute_dtype, *where), **logprobs_out)
        self._cast = jax.jit(functools.partial(_cast, dtype=self.compute_dtype), **params_out)
        self._zeros_like = jax.jit(functools.partial(jax.tree.map, jnp.zeros_like), **params_out)
        self._accumulate = jax.jit(functools.partial(accumulate_gradients, self.graphdef, cfg, *where),
                                   donate_argnums=1, **accumulate_out)
        # Only the state is donated: the new state reuses its buffers, and nothing of the gradient's shape is left
        # for the gradient's buffers to hold.
        self._apply = jax.jit(functools.partial(apply_gradients, tx), donate_argnums=0, **apply_out)
        self._init_state = jax.jit(functools.partial(_init_state, tx), **init_out)
        self._take = jax.jit(_take, static_argnums=2, **logprobs_out)
        self._place = jax.jit(_place, donate_argnums=0, **logprobs_out)
        self._zeros = jax.jit(functools.partial(jnp.zeros, dtype=jnp.float32), static_argnums=0, **logprobs_out)
        self._gap = jax.jit(sampler_logprob_gap, **logprobs_out)

    def compute_logprobs(self, params: nnx.State, batch: Batch, bucket_size: int) -> jax.Array:
        """Per-token log-probs [B, T] float32 of ``batch["targets"]`` under ``params``, on the device, one
        micro-batch at a time (``micro_batches``; 0 past a row's trimmed width, outside every loss mask)."""
        batch = _same_on_every_process(batch)
        inputs = {k: batch[k] for k in INPUT_KEYS + ("targets",)}
        logp = self._zeros(tuple(batch["targets"].shape))
        for rows, micro in micro_batches(inputs, self.cfg.micro_batch_size, bucket_size):
            logp = self._place(logp, rows, self._compute_logprobs(params, micro))
        return logp

    def take_rows(self, x: jax.Array, rows: np.ndarray) -> jax.Array:
        """Rows ``rows`` of a [B, T] device array, gathered on the device."""
        return self._take(x, rows, x.shape[1])

    def optimizer_step(self, state: TrainState, minibatch: Batch, old_logprobs, ref_logprobs=None, *,
                       bucket_size: int) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimizer step on a mini-batch [M, ...] in micro-batches (``micro_batches``); returns (new
        state, metrics). Donates ``state``.

        old_logprobs, ref_logprobs: [M, T] from ``compute_logprobs`` before the update (ref may be None
        when kl_coef is 0; both None for SFT, old None for DPO), left on the device. Metrics (float32
        scalars) are the mini-batch's: the loss parts and ratio / clip statistics of ``policy_loss`` (or
        ``sft_loss``'s, ``dpo_loss``'s), plus grad_norm (before clipping), sampler_logprob_gap
        (``sampler_logprob_gap``, when old log-probs are given) and skipped_nonfinite (1 when the loss or the
        gradient norm was not finite and the update was skipped: ``apply_gradients``).
        """
        minibatch = jax.tree.map(np.asarray, _same_on_every_process(minibatch))
        micros = micro_batches({k: minibatch[k] for k in LOSS_KEYS}, self.cfg.micro_batch_size, bucket_size,
                               rows_together=self.cfg.objective.rows_per_example)
        with_tokens = sum(bool(micro["loss_mask"].any()) for _, micro in micros)  # micro_token_mean's K
        normalizer = Normalizer(*(np.float32(x) for x in mini_batch_normalizer(
            minibatch["loss_mask"], minibatch["is_revision"], num_micro_batches=with_tokens)))
        compute_params = state.params if self.compute_dtype == jnp.float32 else self._cast(state.params)
        grads = self._zeros_like(state.params)
        per_micro = []
        for rows, micro in micros:
            width = micro["targets"].shape[1]
            old = None if old_logprobs is None else self._take(old_logprobs, rows, width)
            ref = None if ref_logprobs is None else self._take(ref_logprobs, rows, width)
            grads, metrics = self._accumulate(compute_params, grads, micro, old, ref, normalizer)
            per_micro.append(metrics)
        # Every metric is a micro-batch's share of the mini-batch value, except ratio_max (see policy_loss).
        metrics = {k: (jnp.max if k == "ratio_max" else jnp.sum)(jnp.stack([m[k] for m in per_micro]))
                   for k in per_micro[0]}
        state, metrics["grad_norm"], metrics["skipped_nonfinite"] = self._apply(state, grads, metrics["loss"])
        if old_logprobs is not None:
            metrics["sampler_logprob_gap"] = self._gap(minibatch["sampler_logprobs"], minibatch["sampler_mask"],
                                                       old_logprobs)
        return state, metrics

    def init_state(self, model) -> TrainState:
        """A fresh state holding a float32 copy of the model's parameters (the model stays usable), laid out
        like the model's parameters."""
        _, params = nnx.split(model, nnx.Param)
        return self._init_state(params)


def _init_state(tx: optax.GradientTransformation, params: nnx.State) -> TrainState:
    # A copy even when already float32: jit would hand back the input arrays, and optimizer_step donates them.
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
