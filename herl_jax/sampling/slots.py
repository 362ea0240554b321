"""The sampler's device programs: prefill the prompts, refill decode slots, decode a chunk of steps.

A fixed number S of decode slots each serve one request row (a prompt's sample) at a time. The host
(sampling.sampler) refills slots whose rows have stopped with the next requests and runs the decode in
jitted chunks of K steps in between; every shape is static, and the decode slots' shapes are the same for
every call of a config (herl_jax.buckets), so a config compiles a few programs once: prefill and refill
per prompt bucket, the chunk per slot count and attention window.

Shapes: P prompts (bucketed), T prompt bucket length, S slots, C cache slots per slot (the config's
longest prompt bucket plus M, whatever this call's T), M max new tokens, V vocab. Each slot's cache holds
its prompt left-padded in slots [0, T) and its completion from T on, so one row's keys lie in
[0, T + tokens so far). Each slot keeps its row's completion [M]; the host collects it when the slot is
refilled or the call ends.

Random draws depend only on (seed, request row, token index), never on the slot or the slot count.
Params enter every program as arguments (never closed over), so a policy update does not recompile.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from herl_jax import parallel
from herl_jax.models import Decoder, KVCache
from herl_jax.models.decoder import outside_layers, write_rows
from herl_jax.sampling.filters import sample_rows

# Logical axis names of the sampler's arrays (the sharding rules map them to mesh axes).
BATCH_SEQ_AXES = ("batch", "seq")
BATCH_VOCAB_AXES = ("batch", "vocab")
COMPLETION_AXES = ("batch", None)  # a slot's completion [S, M] stays with the slot's cache


@dataclasses.dataclass(frozen=True)
class DrawSettings:
    """What shapes a draw and a row's end (static in the programs)."""

    temperature: float
    top_k: int
    top_p: float
    stop_token_ids: tuple[int, ...]
    max_new_tokens: int
    pad_id: int = 0  # written after a row's end


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Prompts:
    """The prefilled prompts: cache [P rows, T slots] and each prompt's next-token logits [P, V]."""

    cache: KVCache
    logits: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Slots:
    """The decode slots and the completions of the rows they serve.

    cache:    KVCache with S rows of C slots
    token:    [S] int32, the slot's last sampled token (the next step's input)
    step:     [S] int32, tokens its request row has so far
    active:   [S] bool, the slot's row is still decoding
    request:  [S] int32, the request row it serves
    tokens:   [S, M] int32, the row's completion so far, pad id after its end (split over the batch axes)
    logprobs: [S, M] float32, log-prob of each sampled token, 0 after the end
    """

    cache: KVCache
    token: jax.Array
    step: jax.Array
    active: jax.Array
    request: jax.Array
    tokens: jax.Array
    logprobs: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DecodeWeights:
    """The weights prefill and decode read, copied once per sampler call into the sampler's layout
    (`parallel.decode_rules`: whole on every device, or split over `tensor` only).

    head:   the model's parameters outside the layer stack (embedding, final norm, LM head)
    layers: each layer's parameters in buffers of its own: slicing the stacked layers inside a loop copies
            them on every step (`Decoder.layer_states`)
    """

    head: nnx.State
    layers: tuple[nnx.State, ...]

    def model(self, graphdef, state) -> Decoder:
        """The decoder with these weights in place of `state`'s embedding, norm and head."""
        return nnx.merge(graphdef, nnx.State({name: self.head.get(name, value) for name, value in state.items()}))


def decode_weights(state: nnx.State, *, mesh: Mesh | None, rules: parallel.Rules) -> DecodeWeights:
    """The weights of a Decoder's `state` laid out by `rules` (the sampler's decode rules), gathered here
    once. One layer at a time: a program for the head and one for a layer (called once per layer), so the
    copy's temporaries are one layer's gathered weights, not the whole model's, whatever the depth."""
    stacked = state["layers"]
    num_layers = jax.tree.leaves(stacked)[0].shape[0]
    return DecodeWeights(head=decode_head_weights(outside_layers(state), mesh=mesh, rules=rules),
                         layers=tuple(decode_layer_weights(stacked, np.int32(i), mesh=mesh, rules=rules)
                                      for i in range(num_layers)))


@functools.partial(jax.jit, static_argnames=("mesh", "rules"))
def decode_head_weights(head: nnx.State, *, mesh: Mesh | None, rules: parallel.Rules) -> nnx.State:
    """The embedding, final norm and LM head in the decode layout."""
    return _laid_out(head, mesh, rules, per_layer=False)


@functools.partial(jax.jit, static_argnames=("mesh", "rules"))
def decode_layer_weights(stacked: nnx.State, index, *, mesh: Mesh | None, rules: parallel.Rules) -> nnx.State:
    """Layer `index` ([] int32) of the stacked layers, in buffers of its own in the decode layout."""
    return _laid_out(jax.tree.map(lambda x: x[index], stacked), mesh, rules, per_layer=True)


def _laid_out(variables: nnx.State, mesh: Mesh | None, rules: parallel.Rules, *, per_layer: bool) -> nnx.State:
    """`variables` constrained to their logical axes under `rules`; `per_layer`: slices of the stacked
    layers, whose axes still name "layers" first."""
    if mesh is None:
        return variables

    def place(variable):
        axes = parallel.variable_axes(variable)
        if axes is None:
            return variable
        return variable.replace(parallel.constrain(variable.get_value(), axes[1:] if per_layer else axes, mesh, rules))

    return jax.tree.map(place, variables, is_leaf=lambda x: isinstance(x, nnx.Variable))


# Prompt tokens one device prefills at once: a call's prompts are prefilled in pieces so that the activations
# of a layer ([rows, T, intermediate size], the largest) stay about this size whatever the call's size.
PREFILL_TOKENS_PER_DEVICE = 16384


def prefill_pieces(num_prompts: int, prompt_len: int, batch_shards: int) -> int:
    """How many pieces `prefill` cuts P prompts of T tokens into: a power of two dividing P, the fewest that
    keep each device's share of a piece within PREFILL_TOKENS_PER_DEVICE tokens (or at one prompt)."""
    rows = max(1, PREFILL_TOKENS_PER_DEVICE // prompt_len) * batch_shards
    pieces = 1
    while num_prompts // pieces > rows and num_prompts % (2 * pieces) == 0:
        pieces *= 2
    return pieces


@functools.partial(jax.jit, static_argnames=("graphdef", "pieces", "mesh", "rules"))
def prefill(graphdef, state, weights: DecodeWeights, ids, mask, *, pieces: int = 1, mesh: Mesh | None,
            rules: parallel.Rules) -> Prompts:
    """Runs the left-padded prompts ids, mask [P, T] once, in `pieces` pieces of P / pieces prompts run one
    after another (`prefill_pieces`). Piece i holds prompts i, i + pieces, i + 2 pieces, ...: cut so, a
    device's share of every piece is among the prompts it holds, and the pieces' caches join in place."""
    model = weights.model(graphdef, state)

    def one_piece(piece_ids, piece_mask) -> Prompts:
        piece_ids = parallel.constrain(piece_ids, BATCH_SEQ_AXES, mesh, rules)
        piece_mask = parallel.constrain(piece_mask, BATCH_SEQ_AXES, mesh, rules)
        cache = KVCache.empty(model.cfg, batch=piece_ids.shape[0], max_len=piece_ids.shape[1])
        hidden, cache = model.hidden_states(piece_ids, piece_mask, cache=constrain_cache(cache, mesh, rules),
                                            layers=weights.layers, mesh=mesh, rules=rules)
        logits = model.logits(hidden[:, -1])  # left-padded: the last column is every prompt's last token
        return Prompts(constrain_cache(cache, mesh, rules), parallel.constrain(logits, BATCH_VOCAB_AXES, mesh, rules))

    if pieces == 1:
        return one_piece(ids, mask)
    num_prompts = ids.shape[0]

    def split(x):  # [P, ...] -> [pieces, P / pieces, ...], piece i = prompts i, i + pieces, ...
        return x.reshape(num_prompts // pieces, pieces, *x.shape[1:]).swapaxes(0, 1)

    def join(x):
        return x.swapaxes(0, 1).reshape(num_prompts, *x.shape[2:])

    out = jax.tree.map(join, jax.lax.map(lambda piece: one_piece(*piece), (split(ids), split(mask))))
    return Prompts(constrain_cache(out.cache, mesh, rules), parallel.constrain(out.logits, BATCH_VOCAB_AXES, mesh, rules))


@functools.partial(jax.jit, static_argnames=("cfg", "num_slots", "cache_len", "max_new", "pad_id", "mesh", "rules"))
def empty_slots(*, cfg, num_slots: int, cache_len: int, max_new: int, pad_id: int,
                mesh: Mesh | None, rules: parallel.Rules) -> Slots:
    """S idle slots with empty caches of C slots, and completions [S, M] all padding."""
    zeros = jnp.zeros((num_slots,), jnp.int32)
    return Slots(
        cache=constrain_cache(KVCache.empty(cfg, batch=num_slots, max_len=cache_len), mesh, rules),
        token=zeros, step=zeros, active=jnp.zeros((num_slots,), bool), request=zeros,
        tokens=parallel.constrain(jnp.full((num_slots, max_new), pad_id, jnp.int32), COMPLETION_AXES, mesh, rules),
        logprobs=parallel.constrain(jnp.zeros((num_slots, max_new), jnp.float32), COMPLETION_AXES, mesh, rules),
    )


def refill(slots: Slots, prompts: Prompts, dest, src, request, base_key, *, settings: DrawSettings,
           mesh: Mesh | None, rules: parallel.Rules) -> tuple[Slots, tuple[jax.Array, jax.Array]]:
    """Starts request row `request[j]` (a row of prompt `src[j]`) in slot `dest[j]`, for j < K (dest, src,
    request [K] int32; a `dest` of S or more marks an unused entry): copies the prompt's cache into the
    slot's first T cache slots, marks the rest empty, and draws the row's first token from the prompt's
    logits. Other slots are left as they are. Only the K refilled rows move between devices.

    One program sets the slots' rows (`refill_rows`), then one per layer copies that layer's keys and values
    (`refill_layer`, the same program for every layer): its temporaries are one layer's refilled rows
    whatever the depth (in one program for all layers, XLA:CPU kept every layer's rows live at once).

    Returns the slots and what the chosen slots held before: (tokens [K, M], logprobs [K, M]), replicated,
    the completions of the rows that ended there (rubbish for unused entries and never-used slots)."""
    cache, prompt_cache = slots.cache, prompts.cache
    rows, ended = refill_rows(without_keys_values(slots), without_keys_values(prompts), dest, src, request,
                              base_key, settings=settings, mesh=mesh, rules=rules)
    k, v = zip(*(refill_layer(k_buf, v_buf, k_prompt, v_prompt, dest, src, mesh=mesh, rules=rules)
                 for k_buf, v_buf, k_prompt, v_prompt
                 in zip(cache.k, cache.v, prompt_cache.k, prompt_cache.v, strict=True)))
    return dataclasses.replace(rows, cache=dataclasses.replace(rows.cache, k=k, v=v)), ended


@functools.partial(jax.jit, static_argnames=("settings", "mesh", "rules"), donate_argnames=("slots",))
def refill_rows(slots: Slots, prompts: Prompts, dest, src, request, base_key, *, settings: DrawSettings,
                mesh: Mesh | None, rules: parallel.Rules) -> tuple[Slots, tuple[jax.Array, jax.Array]]:
    """`refill` but for the keys and values: `slots` and `prompts` come and go without them (their caches'
    k and v are empty tuples)."""
    num_slots, prompt_len = slots.token.shape[0], prompts.cache.key_valid.shape[1]
    max_new = slots.tokens.shape[1]
    held = jnp.minimum(dest, num_slots - 1)
    ended = (parallel.replicate(slots.tokens[held], mesh), parallel.replicate(slots.logprobs[held], mesh))
    src = _chosen_prompts(dest, src, num_slots)
    cache, prompt = slots.cache, prompts.cache
    tail = cache.key_valid.shape[1] - prompt_len
    cache = dataclasses.replace(
        cache,
        key_valid=cache.key_valid.at[dest].set(jnp.pad(prompt.key_valid[src], ((0, 0), (0, tail))), mode="drop"),
        lengths=cache.lengths.at[dest].set(prompt.lengths[src], mode="drop"),
        index=cache.index.at[dest].set(prompt_len, mode="drop"),
    )
    token, logprob = _draw(prompts.logits[src], base_key, request, 0, settings, mesh, rules)
    stop = jnp.isin(token, jnp.asarray(settings.stop_token_ids or (-1,), jnp.int32))
    first_tokens = jnp.full((len(dest), max_new), settings.pad_id, jnp.int32).at[:, 0].set(token)
    first_logprobs = jnp.zeros((len(dest), max_new), jnp.float32).at[:, 0].set(logprob)
    return Slots(
        cache=constrain_cache(cache, mesh, rules),
        token=slots.token.at[dest].set(token, mode="drop"),
        step=slots.step.at[dest].set(1, mode="drop"),
        active=slots.active.at[dest].set(~stop & (settings.max_new_tokens > 1), mode="drop"),
        request=slots.request.at[dest].set(request, mode="drop"),
        tokens=parallel.constrain(slots.tokens.at[dest].set(first_tokens, mode="drop"), COMPLETION_AXES, mesh, rules),
        logprobs=parallel.constrain(slots.logprobs.at[dest].set(first_logprobs, mode="drop"), COMPLETION_AXES, mesh,
                                    rules),
    ), ended


@functools.partial(jax.jit, static_argnames=("mesh", "rules"), donate_argnames=("k_buf", "v_buf"))
def refill_layer(k_buf, v_buf, k_prompt, v_prompt, dest, src, *, mesh: Mesh | None, rules: parallel.Rules):
    """One layer's part of `refill`: the chosen prompts' keys and values (k_prompt, v_prompt [P, T, K, H])
    copied into the first T cache slots of slots `dest` (k_buf, v_buf [S, C, K, H], updated in place)."""
    src = _chosen_prompts(dest, src, k_buf.shape[0])
    prompt_len = k_prompt.shape[1]

    def place(buffer, prompt_buffer):  # buffer [S, C, ...] <- the K chosen prompt rows [K, T, ...]
        placed = buffer.at[dest, :prompt_len].set(prompt_buffer[src], mode="drop")
        return parallel.constrain(placed, KVCache.LAYER_KV_AXES, mesh, rules)

    return place(k_buf, k_prompt), place(v_buf, v_prompt)


def without_keys_values(held: Slots | Prompts) -> Slots | Prompts:
    """`held` with its cache's k and v as empty tuples: what `refill_rows` takes."""
    return dataclasses.replace(held, cache=dataclasses.replace(held.cache, k=(), v=()))


def _chosen_prompts(dest, src, num_slots: int):
    """src [K] with the unused entries' (dest >= num_slots) set to prompt 0, so every read is in bounds."""
    return jnp.where(dest < num_slots, src, 0)


@functools.partial(jax.jit, static_argnames=("graphdef", "settings", "steps", "window", "mesh", "rules"),
                   donate_argnames=("slots",))
def decode_chunk(graphdef, state, weights: DecodeWeights, slots: Slots, base_key, refill_at, *, settings: DrawSettings,
                 steps: int, window: int, mesh: Mesh | None, rules: parallel.Rules):
    """Up to `steps` decode steps over all slots, attending over the first `window` cache slots (every
    active row's keys must stay inside them); stops early once no slot is active or `refill_at` slots
    are idle (the host has requests for them). Returns slots and, replicated for the host, (steps run [],
    active [S], step [S]).

    Each step runs the layers unrolled, each on its own weights (`weights.layers`) and cache buffers. Idle slots
    ride along (their results are dropped; their cache index stays put)."""
    max_new = slots.tokens.shape[1]
    stop_ids = jnp.asarray(settings.stop_token_ids or (-1,), jnp.int32)

    def not_finished(carry):
        i, s = carry
        return (i < steps) & jnp.any(s.active) & (jnp.sum(~s.active) < refill_at)

    def decode_step(carry):
        i, s = carry
        model = weights.model(graphdef, state)  # built inside the loop body: NNX objects stay on one trace level
        logits, cache = model(s.token[:, None], s.active[:, None], cache=s.cache, layers=weights.layers,
                              window=window, mesh=mesh, rules=rules)
        cache = dataclasses.replace(cache, index=jnp.where(s.active, cache.index, s.cache.index))
        token, logprob = _draw(logits[:, 0], base_key, s.request, s.step, settings, mesh, rules)
        step = s.step + s.active
        return i + 1, Slots(
            cache=constrain_cache(cache, mesh, rules),
            token=jnp.where(s.active, token, s.token),
            step=step,
            active=s.active & ~jnp.isin(token, stop_ids) & (step < max_new),
            request=s.request,
            tokens=_write_active(s.tokens, token, s.step, s.active),
            logprobs=_write_active(s.logprobs, logprob, s.step, s.active),
        )

    ran, slots = jax.lax.while_loop(not_finished, decode_step, (jnp.int32(0), slots))
    return slots, tuple(parallel.replicate(x, mesh) for x in (ran, slots.active, slots.step))


@functools.partial(jax.jit, static_argnames=("mesh",))
def completions(slots: Slots, *, mesh: Mesh | None):
    """The slots' completions (tokens [S, M], logprobs [S, M]) replicated, so every process of a multi-host
    run reads all rows."""
    return parallel.replicate(slots.tokens, mesh), parallel.replicate(slots.logprobs, mesh)


def _write_active(buffer, value, step, active):
    """buffer [S, M] with value [S] at column step[s] of each active row; idle rows keep theirs (their
    step may be M). Per row, so a batch-split buffer is written where it lives."""
    at = jnp.minimum(step, buffer.shape[1] - 1)
    held = jax.vmap(lambda row, i: jax.lax.dynamic_index_in_dim(row, i, keepdims=False))(buffer, at)
    return write_rows(buffer, jnp.where(active, value, held)[:, None], at)


def _draw(logits, base_key, request, step, settings: DrawSettings, mesh, rules):
    """One token per row from logits [S, V] with the key of (request row, token index)."""
    row_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base_key, request)
    keys = jax.vmap(jax.random.fold_in)(row_keys, jnp.broadcast_to(step, request.shape))
    logits = parallel.constrain(logits, BATCH_VOCAB_AXES, mesh, rules)
    return sample_rows(logits, keys, settings.temperature, settings.top_k, settings.top_p)


def constrain_cache(cache: KVCache, mesh: Mesh | None, rules: parallel.Rules) -> KVCache:
    """The cache laid out by its logical axes (keys/values split by rows and, where they divide, heads)."""
    def kv(buffers):
        return tuple(parallel.constrain(b, KVCache.LAYER_KV_AXES, mesh, rules) for b in buffers)

    return dataclasses.replace(
        cache, k=kv(cache.k), v=kv(cache.v),
        key_valid=parallel.constrain(cache.key_valid, KVCache.MASK_AXES, mesh, rules),
        lengths=parallel.constrain(cache.lengths, ("batch",), mesh, rules),
        index=parallel.constrain(cache.index, ("batch",), mesh, rules),
    )
