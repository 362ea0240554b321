"""The device side of a policy update: log-probs before the update, and one optimizer step.

A ``Learner`` fixes the static parts (the model's graphdef, the optax transform, the ``StepConfig``)
and exposes two functions that take the parameters as arguments:

  compute_logprobs(params, batch, bucket_size=None) -> [B, W]   old / reference log-probs
  train_step(state, minibatch, old_logprobs, ref_logprobs=None, bucket_size=None) -> (state, metrics)

Batches are ``herl_jax.herl.collate`` dicts: input_ids, positions, attention_mask [B, T]; targets,
loss_mask, sampler_logprobs, sampler_mask [B, W]; advantages, is_revision [B]. W == T for the "right"
layout; W < T for "left_context", whose targets are scored by hidden[:, T-W-1 : T-1].

Micro-batches: a mini-batch is cut into micro-batches of ``micro_batch_size`` rows, each a jitted
forward/backward whose float32 gradient is added to a running sum; one jitted optimizer step then applies
it. With ``bucket_size`` the rows are first sorted by length and each micro-batch is trimmed to its own
longest row (rounded up to ``bucket_size``), so rollouts are not padded to the length of a long revise
prompt. Every loss term is normalized by the whole mini-batch (``mini_batch_normalizer``), so the sum
is the mini-batch gradient however the rows are grouped. Compiles once per micro-batch width.

Sharding: when the model's parameters are on a mesh (``herl_jax.parallel``), the state is kept laid out
like them (optimizer moments mirror the parameters), each micro-batch's rows are split over the batch axes,
and log-probs and metrics come back replicated. Batches are host (numpy) arrays of the global batch; in a
multi-process run process 0's copy is broadcast, so all processes step on the same data.
``compute_logprobs`` without ``bucket_size`` also takes global jax.Arrays (e.g. from
``parallel.local_batch_to_global``) as they are.

Precision: master parameters and optimizer state are float32. The model computes in its
``ModelConfig.dtype``: with "bfloat16" the step casts the parameters to bf16 once per mini-batch,
differentiates the loss with respect to that copy, and accumulates the gradient in float32.
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


INPUT_KEYS = ("input_ids", "attention_mask", "positions")  # [B, T]
RESPONSE_KEYS = ("targets", "loss_mask", "sampler_logprobs", "sampler_mask")  # [B, W]
LOSS_KEYS = ("input_ids", "attention_mask", "positions", "targets", "loss_mask", "advantages", "is_revision")


def accumulate_gradients(
    graphdef: nnx.GraphDef,
    cfg: StepConfig,
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
    micro-batch's shares of the metrics. micro: [m, T] / [m, W] arrays; old / ref log-probs [m, W]."""
    def split_rows(x):
        return parallel.constrain(x, ("batch",) + (None,) * (x.ndim - 1), mesh, rules)

    micro, old_logprobs, ref_logprobs = jax.tree.map(split_rows, (micro, old_logprobs, ref_logprobs))

    def loss_fn(params):
        model = nnx.merge(graphdef, params)
        return micro_batch_loss(response_hidden(model, micro), model.lm_head_kernel(), micro, old_logprobs,
                                ref_logprobs, normalizer, cfg)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(compute_params)
    return jax.tree.map(lambda acc, g: acc + g.astype(jnp.float32), grad_sum, grads), metrics


def apply_gradients(tx: optax.GradientTransformation, state: TrainState,
                    grads: nnx.State) -> tuple[TrainState, jax.Array]:
    """One optimizer step with the mini-batch gradient; also returns its global norm (before clipping)."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), optax.global_norm(grads)


def micro_batches(batch: dict[str, np.ndarray], micro_batch_size: int, bucket_size: int | None = None,
                  extra: dict[str, np.ndarray | None] | None = None):
    """Splits a host batch of M rows into micro-batches of m = min(micro_batch_size, M) rows.

    Returns [(rows [m] int, micro-batch dict)]. ``extra``: more [M, W] arrays (old / reference log-probs)
    split and trimmed like the targets (None values stay None). Without ``bucket_size`` the rows are
    taken in order at full width; with it, sorted by length (stable) and each micro-batch trimmed to
    its longest row rounded up to ``bucket_size`` (both blocks separately for the "left_context" layout).
    """
    arrays = dict(batch, **(extra or {}))
    size, t, w = batch["input_ids"].shape[0], batch["input_ids"].shape[1], batch["targets"].shape[1]
    m = min(micro_batch_size, size)
    if size % m:
        raise ValueError(f"a mini-batch of {size} rows does not split into micro-batches of {m}")
    attention = np.asarray(batch["attention_mask"]).astype(bool)
    order = np.argsort(attention.sum(axis=1), kind="stable") if bucket_size else np.arange(size)
    response_keys = set(RESPONSE_KEYS) | set(extra or {})

    def width(used: np.ndarray, full: int) -> int:
        return full if not bucket_size else min(full, max(bucket_size, -(-int(used.max()) // bucket_size) * bucket_size))

    out = []
    for start in range(0, size, m):
        rows = order[start : start + m]
        if w == t:  # "right": every row starts at column 0
            used = attention[rows].sum(axis=1)
            cols_in, cols_out = slice(0, width(used, t)), slice(0, width(used, t))
        else:  # "left_context": contexts end at column P = T - W, responses start there
            p = t - w
            context = width(attention[rows, :p].sum(axis=1), p)
            response = width(attention[rows, p:].sum(axis=1), w)
            cols_in, cols_out = slice(p - context, p + response), slice(0, response)
        micro = {}
        for key, value in arrays.items():
            if value is None:
                micro[key] = None
            elif key in INPUT_KEYS:
                micro[key] = value[rows][:, cols_in]
            elif key in response_keys:
                micro[key] = value[rows][:, cols_out]
            else:
                micro[key] = value[rows]
        out.append((rows, micro))
    return out


class Learner:
    """The jitted functions for one model architecture, optimizer and ``StepConfig`` (see the module
    docstring for ``compute_logprobs`` and ``train_step``).

    Built from a model only for its graphdef (structure and config), its compute dtype
    (``model.cfg.dtype``) and where its parameters are placed (a mesh, laid out by ``rules``, or one
    device); parameters always travel as arguments. ``train_step`` donates its state.
    """

    def __init__(self, model, tx: optax.GradientTransformation, cfg: StepConfig,
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
            apply_out = dict(out_shardings=(self.state_shardings, replicated))
            init_out = dict(out_shardings=self.state_shardings)
        where = (self.mesh, rules)
        self._compute_logprobs = jax.jit(
            functools.partial(compute_logprobs, self.graphdef, cfg, self.compute_dtype, *where), **logprobs_out)
        self._cast = jax.jit(functools.partial(_cast, dtype=self.compute_dtype), **params_out)
        self._zeros = jax.jit(functools.partial(jax.tree.map, jnp.zeros_like), **params_out)
        self._accumulate = jax.jit(functools.partial(accumulate_gradients, self.graphdef, cfg, *where),
                                   donate_argnums=1, **accumulate_out)
        self._apply = jax.jit(functools.partial(apply_gradients, tx), donate_argnums=(0, 1), **apply_out)
        self._init_state = jax.jit(functools.partial(_init_state, tx), **init_out)

    def compute_logprobs(self, params: nnx.State, batch: Batch, bucket_size: int | None = None):
        """Per-token log-probs [B, W] float32 of ``batch["targets"]`` under ``params`` (0 past a row's
        trimmed width when ``bucket_size`` is given; those positions are outside every loss mask)."""
        batch = _same_on_every_process(batch)
        if bucket_size is None:
            return self._compute_logprobs(params, batch)
        inputs = {k: batch[k] for k in INPUT_KEYS + ("targets",)}
        pieces = [(rows, self._compute_logprobs(params, micro))
                  for rows, micro in micro_batches(inputs, self.cfg.micro_batch_size, bucket_size)]
        logp = np.zeros(batch["targets"].shape, np.float32)
        for rows, piece in pieces:
            piece = np.asarray(piece)
            logp[rows, : piece.shape[1]] = piece
        return logp

    def train_step(self, state: TrainState, minibatch: Batch, old_logprobs, ref_logprobs=None,
                   bucket_size: int | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimizer step on a mini-batch [M, ...]; returns (new state, metrics). Donates ``state``.

        old_logprobs, ref_logprobs: [M, W] from ``compute_logprobs`` before the update (ref may be None
        when kl_coef is 0). Metrics (float32 scalars) are the mini-batch's: the loss parts and ratio / clip
        statistics of ``policy_loss``, plus grad_norm (before clipping) and sampler_logprob_gap, the mean
        |sampler_logprob − old_logprob| over sampler_mask tokens (0 when no row carries sampler log-probs).
        """
        minibatch, old_logprobs, ref_logprobs = jax.tree.map(
            np.asarray, _same_on_every_process((minibatch, old_logprobs, ref_logprobs)))
        normalizer = Normalizer(*(np.float32(x) for x in
                                  mini_batch_normalizer(minibatch["loss_mask"], minibatch["is_revision"])))
        compute_params = state.params if self.compute_dtype == jnp.float32 else self._cast(state.params)
        grads = self._zeros(state.params)
        per_micro = []
        loss_inputs = {k: minibatch[k] for k in LOSS_KEYS}
        extra = {"old": old_logprobs, "ref": ref_logprobs}
        for _, micro in micro_batches(loss_inputs, self.cfg.micro_batch_size, bucket_size, extra):
            old, ref = micro.pop("old"), micro.pop("ref")
            grads, metrics = self._accumulate(compute_params, grads, micro, old, ref, normalizer)
            per_micro.append(metrics)
        state, grad_norm = self._apply(state, grads)
        # Every metric is a micro-batch's share of the mini-batch value, except ratio_max (see policy_loss).
        metrics = {k: (jnp.max if k == "ratio_max" else jnp.sum)(jnp.stack([m[k] for m in per_micro]))
                   for k in per_micro[0]}
        sampled = minibatch["sampler_mask"]
        gap = np.abs(minibatch["sampler_logprobs"] - old_logprobs)
        metrics["grad_norm"] = grad_norm
        metrics["sampler_logprob_gap"] = np.float32(np.where(sampled, gap, 0.0).sum() / max(sampled.sum(), 1))
        return state, metrics

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
