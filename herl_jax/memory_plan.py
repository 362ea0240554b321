"""A training run's memory per device, planned before launching it (`python -m herl_jax.plan` prints it; the
trainer refuses a run whose plan cannot fit, herl_jax.training.preflight).

Everything is computed from shapes: the model is built abstractly (nnx.eval_shape) from the checkpoint's
config.json, or, for the paper's models when their weights are not on this machine, from a copy of their
config.json (herl_jax.models.shapes); the optimizer state from jax.eval_shape of its init. Each array is
divided by the mesh axes its logical axes map to (herl_jax.parallel.DEFAULT_RULES), exactly as the trainer
places it. Nothing is loaded and nothing large is allocated; no accelerator is needed.

The programs' temporaries are an estimate from shapes (`training_temporaries`, `optimizer_temporaries`,
`prefill_temporaries`, `decode_temporaries`), for the compute dtype and attention of the model config: bfloat16 with cuDNN
attention on a GPU. Checked against XLA's compiled sizes on CPU (tests/parallel/test_temporaries.py:
float32, XLA attention, where the CPU program holds what a GPU program would; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import AbstractMesh

from herl_jax import parallel
from herl_jax.buckets import decode_slot_count, prompt_bucket_count, round_up
from herl_jax.herl.config import HerlConfig
from herl_jax.models import Decoder, KVCache, ModelConfig
from herl_jax.models.decoder import ACTIVATION_AXES, outside_layers
from herl_jax.models.loading import model_config_of
from herl_jax.models.shapes import KNOWN_MODELS, find_known_model, known_model_config
from herl_jax.learner.config import ObjectiveConfig
from herl_jax.learner.logprobs import CHUNK_HIDDEN_AXES, CHUNK_LOGITS_AXES, HEAD_AXES
from herl_jax.learner.optim import make_optimizer
from herl_jax.sampling.sampler import refill_count
from herl_jax.sampling.slots import prefill_pieces

GIB = 1024**3
# The temporaries' estimates agree with XLA's compiled sizes within this factor either way
# (tests/parallel/test_temporaries.py): a plan is certain to be short of memory only past it.
ESTIMATE_MARGIN = 1.5


@dataclasses.dataclass(frozen=True)
class Item:
    """One group of arrays: `phase` is "persistent" (whole run), "sampling" or "training"."""

    name: str
    phase: str
    per_device: int  # bytes on the busiest device
    total: int  # bytes over all devices (replicated arrays counted once per device)
    estimated: bool = False  # XLA's temporaries, estimated from shapes (the arrays' own sizes are exact)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    model: str  # where the model's shapes came from
    model_config: ModelConfig
    mesh_shape: dict[str, int]
    items: tuple[Item, ...]

    def phase_bytes(self, phase: str, least: bool = False) -> int:
        """Bytes per device of the phase's items; `least`: with the estimates at their lowest (÷ ESTIMATE_MARGIN)."""
        return sum(i.per_device / ESTIMATE_MARGIN if least and i.estimated else i.per_device
                   for i in self.items if i.phase == phase)

    @property
    def peak_per_device(self) -> int:
        """Persistent arrays plus the larger of the sampling and the training phase."""
        return self.phase_bytes("persistent") + max(self.phase_bytes("sampling"), self.phase_bytes("training"))

    @property
    def least_peak(self) -> tuple[float, str]:
        """(bytes, phase): the peak per device with every estimate at its lowest, and the phase that makes it:
        a run that needs more than its device holds cannot fit, whatever the estimates' error."""
        phase = max(("sampling", "training"), key=lambda p: self.phase_bytes(p, least=True))
        return self.phase_bytes("persistent") + self.phase_bytes(phase, least=True), phase

    def item(self, name: str) -> Item:
        return next(i for i in self.items if i.name == name)


def model_config_for(source: str, **runtime: Any) -> tuple[ModelConfig, str]:
    """(ModelConfig, description) of a model source, from its config.json / GGUF metadata, else, when the
    source is not here, from the known models' table by its last path component (a checkpoint's name)."""
    try:
        return model_config_of(source, **runtime)
    except FileNotFoundError:
        name = str(source).rstrip("/").split("/")[-1]
        if find_known_model(name) is None:
            raise FileNotFoundError(f"model source {source!r} is not here and is not one of the known models "
                                    f"{sorted(m.checkpoint for m in KNOWN_MODELS.values())}; point model.source "
                                    "at a checkpoint directory") from None
        return known_model_config(name, **runtime), f"{name} (built-in config; no weights read)"


def plan_memory(config, num_devices: int) -> MemoryPlan:
    """The per-device memory of training with `config` (a full training config) on `num_devices` devices."""
    m = config.model
    cfg, described = model_config_for(m.source, dtype=m.dtype, param_dtype="float32",
                                      attention_impl=m.attention_impl, remat=m.remat)
    mesh = parallel.abstract_mesh(parallel.MeshConfig.from_config(config.parallel), num_devices)
    size = _Sizer(mesh)

    _, params = nnx.split(nnx.eval_shape(lambda: Decoder(cfg, nnx.Rngs(0))), nnx.Param)
    opt_state = jax.eval_shape(make_optimizer(config.train.optim).init, params)
    params_f32 = size.tree(params)
    compute = jnp.dtype(cfg.dtype).itemsize
    cast = cfg.dtype != "float32"  # the sampler and the step use a copy of the params in the compute dtype

    items = [
        Item("params (float32 master)", "persistent", *params_f32),
        Item("optimizer state", "persistent", *size.tree(opt_state)),
    ]
    objective = ObjectiveConfig(**config.train.objective)
    if objective.kind == "dpo" or (not objective.offline and config.train.loss.kl_coef > 0):
        items.append(Item("reference params (DPO, or kl_coef > 0)", "persistent", *params_f32))

    shards = parallel.shards("batch", mesh, parallel.decode_rules())
    calls = sampler_calls(config, shards)
    if calls:
        items += _sampling_items(cfg, params, calls, mesh)

    micro, seq = config.train.ppo.micro_batch_size, training_length(config)
    if cast:
        items.append(Item(f"params in {cfg.dtype} for the step", "training", *size.tree(params, compute)))
    grads = size.tree(params, itemsize=4 + compute if cast else 4)
    items.append(Item("gradients (float32 sum + a micro-batch's)", "training", *grads))
    remat = "remat" if cfg.remat else "no remat"
    chunk = config.train.ppo.logprob_chunk_size
    items.append(_temporaries_item("training", mesh, {
        f"fwd+bwd {micro} x {seq}, {remat}": (
            training_temporaries(cfg, micro, seq, chunk, backward=True), parallel.DEFAULT_RULES),
        f"log-probs {micro} x {seq}": (
            training_temporaries(cfg, micro, seq, chunk, backward=False), parallel.DEFAULT_RULES),
        "optimizer step": (optimizer_temporaries(params), parallel.DEFAULT_RULES)}))
    return MemoryPlan(described, cfg, dict(mesh.shape), tuple(items))


def plan_sampling(cfg: ModelConfig, call: SamplerCall) -> MemoryPlan:
    """The memory of one sampler call on one device (the chat CLI's): the weights as loaded, then the
    sampling phase of `plan_memory` for `call` alone."""
    mesh = parallel.abstract_mesh(parallel.MeshConfig(), 1)
    _, params = nnx.split(nnx.eval_shape(lambda: Decoder(cfg, nnx.Rngs(0))), nnx.Param)
    items = [Item(f"params in {cfg.param_dtype}", "persistent", *_Sizer(mesh).tree(params))]
    return MemoryPlan(call.name, cfg, dict(mesh.shape), tuple(items + _sampling_items(cfg, params, [call], mesh)))


def _sampling_items(cfg: ModelConfig, params, calls: list[SamplerCall], mesh: AbstractMesh) -> list[Item]:
    """The sampling phase: the weights in the compute dtype and the decode layout, and the buffers and
    temporaries of the largest of `calls`."""
    size, compute, items = _Sizer(mesh), jnp.dtype(cfg.dtype).itemsize, []
    if cfg.dtype != cfg.param_dtype:
        items.append(Item(f"params in {cfg.dtype} for sampling", "sampling", *size.tree(params, compute)))
    # The sampler copies the weights once per call into its decode layout (parallel.decode_rules: not split
    # over data or fsdp), the layers into per-layer buffers (sampling.slots.decode_weights).
    decode = _Sizer(mesh, parallel.decode_rules())
    items.append(Item(f"layer weights in {cfg.dtype}, copied per layer for sampling", "sampling",
                      *decode.tree(params["layers"], compute)))
    items.append(Item(f"embedding, norm, LM head in {cfg.dtype}, copied for sampling", "sampling",
                      *decode.tree(outside_layers(params), compute)))
    # The sampler calls run one after another, so the buffers of the largest one count.
    buffers = {call: sampler_arrays(cfg, call) for call in calls}
    call = max(buffers, key=lambda c: sum(size.arrays(arrays)[0] for arrays in buffers[c].values()))
    for label, arrays in buffers[call].items():
        items.append(Item(f"{label} ({call.name})", "sampling", *size.arrays(arrays)))
    rules = parallel.decode_rules()
    copy = weight_copy_temporaries(params, compute)
    refill = refill_temporaries(cfg, call.refill_size, call.prompt_len)
    items.append(_temporaries_item("sampling", mesh, {
        "weight copy, head": ({"head": copy["head"]}, rules),
        "weight copy, a layer": ({"layer": copy["layer"]}, rules),
        f"prefill {call.prefill_rows} x {call.prompt_len}": (
            prefill_temporaries(cfg, call.prefill_rows, call.prompt_len), rules),
        f"refill {call.refill_size} rows, a layer": ({"layer": refill["layer"]}, rules),
        f"refill {call.refill_size} rows": ({"rows": refill["rows"]}, rules),
        f"decode step, {call.slots} slots": (
            decode_temporaries(cfg, call.slots, call.prompt_len + call.max_new), rules)}))
    return items


def _temporaries_item(phase: str, mesh: AbstractMesh, programs: dict[str, tuple[dict, parallel.Rules]]) -> Item:
    """The temporaries of the phase's largest program (they run one after another), by name."""
    peaks = {name: peak_temporaries(phases, mesh, rules) for name, (phases, rules) in programs.items()}
    name = max(peaks, key=peaks.get)
    return Item(f"temporaries: {name} (estimate)", phase, peaks[name], peaks[name] * mesh.size, estimated=True)


@dataclasses.dataclass(frozen=True)
class SamplerCall:
    """One sampler call of a step, by what sizes its buffers (herl_jax.sampling.sampler.sample)."""

    name: str
    prompts: int  # prompts in the call, before the sampler pads their count (herl_jax.buckets)
    n: int  # samples per prompt
    prompt_len: int  # T: the prompt bucket of the longest prompt allowed (C = T + M: a slot's cache)
    max_new: int  # M
    decode_slots: int  # per batch shard; 0: one static batch, one slot per row
    batch_shards: int = 1  # devices the rows are split over (the sampler's slots are decode_slots x this)
    prompt_count_base: int = 4  # the prompt count is padded to a power of this per batch shard

    @property
    def padded_prompts(self) -> int:
        return prompt_bucket_count(self.prompts, self.batch_shards, self.prompt_count_base)

    @property
    def rows(self) -> int:
        """R: request rows (filler prompts have none)."""
        return self.prompts * self.n

    @property
    def host_bytes(self) -> int:
        """What the call holds on its host at least (herl_jax.sampling.sampler.sample): the rows' tokens and
        log-probs [R, M] (int32, float32) and its queue of row numbers (a pointer and an int object a row)."""
        return self.rows * (self.max_new * 8 + 8 + 28)

    @property
    def prefill_rows(self) -> int:
        """Prompts in one prefill piece, on the whole mesh (herl_jax.sampling.slots.prefill_pieces)."""
        return self.padded_prompts // prefill_pieces(self.padded_prompts, self.prompt_len, self.batch_shards)

    @property
    def slots(self) -> int:
        """S: rows decoded at once, on the whole mesh."""
        return decode_slot_count(self.rows, self.decode_slots, self.batch_shards)

    @property
    def refill_size(self) -> int:
        """K: rows one refill starts (herl_jax.sampling.sampler.refill_count)."""
        return refill_count(self.decode_slots, self.slots)


def sampler_calls(config, batch_shards: int = 1) -> list[SamplerCall]:
    """A step's largest rollout and revision calls, and the validation call (greedy, unchunked). An offline
    objective (SFT, DPO) samples for validation only.

    The trainer samples a step's prompts in `trainer.score_overlap_chunks` pieces, one call each; at worst
    every rollout is a revision candidate."""
    t = config.trainer
    calls = []

    def call(name, section, prompts, n, pieces):
        piece = math.ceil(prompts / min(pieces, prompts))
        return SamplerCall(name, piece, n, round_up(section.max_prompt_len, section.prompt_bucket),
                           section.max_new_tokens, section.decode_slots, batch_shards, section.prompt_count_base)

    if not ObjectiveConfig(**config.train.objective).offline:
        calls.append(call("rollouts", config.rollout, t.prompts_per_step, config.rollout.n, t.score_overlap_chunks))
        if HerlConfig(**config.herl).revises:
            candidates = min(config.herl.max_candidates, config.rollout.n)
            calls.append(call("revisions", config.revision, t.prompts_per_step * candidates, 1,
                              t.score_overlap_chunks))
    if t.validate_every and t.validation_prompts:
        calls.append(call("validation", config.rollout, t.validation_prompts, 1, 1))
    return calls


def sampler_arrays(cfg: ModelConfig, call: SamplerCall) -> dict[str, list[tuple[tuple, tuple, int]]]:
    """(shape, logical axes, bytes per element) of the buffers a sampler call holds while it decodes (XLA's
    temporaries not counted), by what they are: the prefilled prompts' cache [P, T] and next-token logits
    [P, V]; the decode slots' cache [S, T + M]; each slot's completion and log-probs [S, M] and its state
    [S] (replicated)."""
    e = jnp.dtype(cfg.dtype).itemsize
    prompts, slots, t, m = call.padded_prompts, call.slots, call.prompt_len, call.max_new

    def cache(batch: int, length: int):
        kv = ((cfg.num_layers, batch, length, cfg.num_kv_heads, cfg.head_dim), KVCache.KV_AXES, e)
        return [kv, kv, ((batch, length), KVCache.MASK_AXES, 1)] + [((batch,), ("batch",), 4)] * 2

    slot_state = [((slots,), (None,), 4)] * 3 + [((slots,), (None,), 1)]  # token, step, request; active
    return {
        f"KV cache of {prompts} prompts x {t}, their logits": cache(prompts, t)
        + [((prompts, cfg.vocab_size), ("batch", "vocab"), 4)],
        f"KV cache of {slots} decode slots x {t + m}": cache(slots, t + m),
        f"completions {slots} x {m}, slot state": [((slots, m), ("batch", None), 4)] * 2 + slot_state,
    }


def training_length(config) -> int:
    """The longest training row: a revise prompt plus its revision (or a prompt plus a rollout), or an offline
    objective's longest row, bucketed."""
    objective = ObjectiveConfig(**config.train.objective)
    if objective.offline:
        return round_up(objective.max_length, config.trainer.sequence_bucket)
    longest = max(config.rollout.max_prompt_len + config.rollout.max_new_tokens,
                  config.revision.max_prompt_len + config.revision.max_new_tokens)
    return round_up(longest, config.trainer.sequence_bucket)


Arrays = list[tuple[tuple, tuple, int]]  # (shape, logical axes, bytes per element) of each array


def attention_scores(cfg: ModelConfig, rows: int, queries: int, keys: int) -> Arrays:
    """What one attention call holds beyond its inputs: with XLA attention the float32 scores and their
    softmax [b, N, T, S]; cuDNN's fused kernel (GPU, "cudnn" or "auto" in half precision) keeps only
    per-query statistics [b, N, T]."""
    cudnn = cfg.attention_impl == "cudnn" or (cfg.attention_impl == "auto" and cfg.dtype != "float32")
    if cudnn:
        return [((rows, cfg.num_heads, queries), ("batch", "q_heads", "seq"), 4)]
    return [((rows, cfg.num_heads, queries, keys), ("batch", "q_heads", "seq", None), 4)] * 2


def layer_working_set(cfg: ModelConfig, rows: int, seq: int, keys: int | None = None) -> Arrays:
    """The activations one decoder layer holds at once in its forward pass, rows [b] x seq [T] new tokens
    attending over `keys` [S] (default T): the layer input and its norm [b,T,D] x 2, q and the attention
    output [b,T,N,H] x 2, k and v [b,T,K,H] x 2, the attention scores (`attention_scores`) and the MLP's
    gate and up [b,T,F] x 2 (their SwiGLU product and the residual sums are elementwise: XLA writes them
    into a dying operand's buffer)."""
    e = jnp.dtype(cfg.dtype).itemsize
    hidden = ((rows, seq, cfg.hidden_size), ACTIVATION_AXES, e)
    q = ((rows, seq, cfg.num_heads, cfg.head_dim), ("batch", "seq", "q_heads", "head_dim"), e)
    kv = ((rows, seq, cfg.num_kv_heads, cfg.head_dim), ("batch", "seq", "kv_heads", "head_dim"), e)
    mlp = ((rows, seq, cfg.intermediate_size), ("batch", "seq", "mlp"), e)
    return [hidden, hidden, q, q, kv, kv, mlp, mlp] + attention_scores(cfg, rows, seq, keys or seq)


def gathered_layer_weights(cfg: ModelConfig, itemsize: int) -> Arrays:
    """One layer's weight matrices gathered over the axes that split their hidden-size dimension (FSDP's
    gather before a layer runs): only a tensor-parallel split is left."""
    d, f, n, k, h = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    return [((d, n, h), (None, "q_heads", "head_dim"), itemsize), ((n, h, d), ("q_heads", "head_dim", None), itemsize)]\
        + [((d, k, h), (None, "kv_heads", "head_dim"), itemsize)] * 2 \
        + [((d, f), (None, "mlp"), itemsize)] * 2 + [((f, d), ("mlp", None), itemsize)]


def training_temporaries(cfg: ModelConfig, rows: int, seq: int, chunk: int, *, backward: bool) -> dict[str, Arrays]:
    """The temporaries of the learner's micro-batch forward + backward (`backward`) or its log-probs
    program, rows [b] x seq [T], by phase: what is live all along, then the arrays of each phase that
    holds more (herl_jax.learner.learner, herl_jax.learner.logprobs). The peak is the largest phase.

    Throughout: the LM head re-laid vocabulary-parallel [D, V / devices] (and its gradient), and in the
    backward the saved layer inputs [b,T,D] x L (with remat; without it every layer's working set).
    A layer: its gathered weights (and their gradient), its working set (and as much again in gradients).
    The head: a chunk of positions of every row of the micro-batch, whole on every device [B, C, D], and its
    float32 logits [B, C, V / devices]; the backward recomputes the chunk's logits and probabilities, and
    holds the gradient of the logits and of the entropy's p * logits term (4 logits-sized arrays)."""
    e = jnp.dtype(cfg.dtype).itemsize
    hidden = ((rows, seq, cfg.hidden_size), ACTIVATION_AXES, e)
    chunk = min(chunk, seq)
    head = [((cfg.hidden_size, cfg.vocab_size), HEAD_AXES, e)]
    chunk_hidden = ((rows, chunk, cfg.hidden_size), CHUNK_HIDDEN_AXES, e)
    logits = ((rows, chunk, cfg.vocab_size), CHUNK_LOGITS_AXES, 4)
    layer = gathered_layer_weights(cfg, e) + layer_working_set(cfg, rows, seq)
    if not backward:
        return {"always": head + [hidden], "layer": layer, "LM head chunk": [chunk_hidden, logits]}
    saved = [hidden] * cfg.num_layers if cfg.remat else layer_working_set(cfg, rows, seq) * cfg.num_layers
    return {"always": head * 2 + saved, "layer": layer * 2,
            "LM head chunk": [hidden, hidden, chunk_hidden, chunk_hidden] + [logits] * 4}


def prefill_temporaries(cfg: ModelConfig, rows: int, seq: int) -> dict[str, Arrays]:
    """The temporaries of prefilling one piece of `rows` prompts of `seq` tokens (herl_jax.sampling.slots;
    weights and cache are the program's arguments and outputs): a layer's working set and the piece's
    float32 next-token logits [b, V]."""
    return {"layer": layer_working_set(cfg, rows, seq) + [((rows, cfg.vocab_size), ("batch", "vocab"), 4)]}


def decode_temporaries(cfg: ModelConfig, slots: int, window: int) -> dict[str, Arrays]:
    """The temporaries of a decode step over `slots` rows attending over `window` cache slots: a layer's
    working set for one token and its keys and values read out of the cache window [S, W, K, H] x 2; and,
    beside them (XLA gives the loop body's values one allocation, and on CPU they do not share its space),
    the draw's float32 logits, probabilities and their cumulative sum [S, V] x 3 (herl_jax.sampling.filters;
    top-p without top-k also sorts the vocabulary: not counted)."""
    e = jnp.dtype(cfg.dtype).itemsize
    window_kv = ((slots, window, cfg.num_kv_heads, cfg.head_dim), KVCache.LAYER_KV_AXES, e)
    draw = [((slots, cfg.vocab_size), ("batch", "vocab"), 4)] * 3
    return {"always": draw, "layer": layer_working_set(cfg, slots, 1, window) + [window_kv] * 2}


def weight_copy_temporaries(params, itemsize: int) -> dict[str, Arrays]:
    """The temporaries of the sampler's weight copy (herl_jax.sampling.slots.decode_weights), by program
    (the head's, then one program per layer, one after another): at most a gathered copy of what the
    program copies, beside its output, in `itemsize` bytes per element. XLA gathers a matrix split on a
    dimension other than its first into a buffer of its own and lays it out from there (the embedding: all
    of it); of a layer, XLA:CPU so holds only the MLP's gate and up, about half: an upper bound there."""
    layer = [(shape[1:], axes[1:], itemsize) for shape, axes, _ in tree_arrays(params["layers"])]
    return {"head": tree_arrays(outside_layers(params), itemsize), "layer": layer}


def refill_temporaries(cfg: ModelConfig, rows: int, prompt_len: int) -> dict[str, Arrays]:
    """The temporaries of a refill of `rows` slots (herl_jax.sampling.slots.refill), by program: a layer's
    copy gathers the rows' prompt keys and values onto every device, operand and result [K, T, kvh, hd]
    x 2 x 2 (XLA:CPU also widens a bfloat16 scatter to float32 over the device's slots, which a GPU does
    not: not counted); the rows' program gathers their prompts' float32 logits likewise [K, V] x 2, and
    draws their first tokens with the rows split again: logits, probabilities and their cumulative sum
    [K, V] x 3."""
    e = jnp.dtype(cfg.dtype).itemsize
    kv = ((rows, prompt_len, cfg.num_kv_heads, cfg.head_dim), (None, None, "kv_heads", "head_dim"), e)
    gathered, draw = ((rows, cfg.vocab_size), (None, "vocab"), 4), ((rows, cfg.vocab_size), ("batch", "vocab"), 4)
    return {"layer": [kv] * 4, "rows": [gathered] * 2 + [draw] * 3}


def optimizer_temporaries(params) -> dict[str, Arrays]:
    """The temporaries of the optimizer step (herl_jax.learner.learner.apply_gradients): the updates, one
    float32 copy of the parameters laid out as they are; the state is updated in place."""
    return {"updates": tree_arrays(params, 4)}


def peak_temporaries(phases: dict[str, Arrays], mesh: AbstractMesh, rules: parallel.Rules = parallel.DEFAULT_RULES) -> int:
    """Bytes per device at the peak of a program's temporaries: what is live "always" plus its largest phase."""
    size = _Sizer(mesh, rules)
    always = size.arrays(phases.get("always", []))[0]
    return always + max(size.arrays(arrays)[0] for name, arrays in phases.items() if name != "always")


class _Sizer:
    """Bytes per device and in total of arrays laid out on a mesh by `rules`."""

    def __init__(self, mesh: AbstractMesh, rules: parallel.Rules = parallel.DEFAULT_RULES):
        self.mesh = mesh
        self.rules = rules

    def one(self, shape, axes, itemsize: int) -> tuple[int, int]:
        spec = parallel.partition_spec(axes, shape, self.mesh, self.rules)
        shards = 1
        for entry in spec:
            for axis in (entry,) if isinstance(entry, str) else (entry or ()):
                shards *= self.mesh.shape[axis]
        nbytes = int(np.prod(shape)) * itemsize
        return nbytes // shards, nbytes // shards * self.mesh.size

    def arrays(self, arrays) -> tuple[int, int]:
        sizes = [self.one(shape, axes, itemsize) for shape, axes, itemsize in arrays]
        return sum(s[0] for s in sizes), sum(s[1] for s in sizes)

    def tree(self, tree, itemsize: int | None = None) -> tuple[int, int]:
        return self.arrays(tree_arrays(tree, itemsize))


def tree_arrays(tree, itemsize: int | None = None) -> Arrays:
    """The arrays of an abstract pytree: those in nnx Variables by their logical axes, others replicated
    (in `itemsize` bytes per element if given)."""
    arrays = []
    for x in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, nnx.Variable)):
        axes = parallel.variable_axes(x) if isinstance(x, nnx.Variable) else None
        value = x.get_value() if isinstance(x, nnx.Variable) else x
        arrays.append((value.shape, axes or (None,) * len(value.shape), itemsize or value.dtype.itemsize))
    return arrays
