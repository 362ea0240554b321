"""The sampler: continuous batching over a fixed number of decode slots, or one static batch.

generate(model, prompts, config) -> SampleOutput
  host:   validate, left-pad the prompts into a (prompt-count, length) bucket (herl_jax.buckets), queue
          their P * n request rows (prompt-major: row r is sample r % n of prompt r // n)
  device: the weights copied once into the decode layout (per-layer buffers, whole on each device or split
          over `tensor` only: `parallel.decode_rules`), then each prompt prefilled once
          (sampling.slots; the cached prompt serves all n of its rows)
  loop:   idle slots take the next queued rows (their prompt's cache copied in, first token drawn; the
          completion of the row that ended there handed back), then a jitted chunk of up to `decode_chunk`
          steps runs, attending only over the cache window that holds keys, until the queue is empty and
          every row has stopped
  host:   completions, lengths and finish reasons

`decode_slots=0` is the static batch: one slot per row, one chunk to the end over the whole cache.
Greedy output is the same either way; sampled tokens are too up to float rounding (each draw's key is
fixed by the seed, the row and the token index).

Sharding: the programs run on the mesh the model's parameters are placed on (none: one device), under
`parallel.decode_rules(rules)`: prompt rows, decode slots and the KV cache are split over the batch axes,
the weights are not (a decode step sends no weights), and `decode_slots` counts slots per batch shard (a
mesh of data x fsdp = 8 decodes 8 x decode_slots rows at once). What the host reads is replicated, so every
process of a multi-host run reads all rows. Every process must pass the same prompts.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Protocol, Sequence

import jax
import numpy as np
from flax import nnx

from herl_jax import parallel
from herl_jax.buckets import decode_slot_count, prompt_bucket_count, prompt_bucket_len, round_up, window_bucket
from herl_jax.models import Decoder
from herl_jax.sampling import slots as slot_programs
from herl_jax.sampling.config import SamplingConfig


@dataclasses.dataclass(frozen=True)
class SampleOutput:
    """Completions for R = len(prompts) * n rows (numpy, host side).

    tokens:       [R, max_new_tokens] int32, completion ids; after a row's end they are `pad_id`
    logprobs:     [R, max_new_tokens] float32, log-prob of each sampled token (temperature-scaled,
                  untruncated distribution); 0 after the end
    mask:         [R, max_new_tokens] bool, True on the completion's tokens
    lengths:      [R] int32, completion lengths (a stop token counts)
    finish_reasons: R strings, "stop" (a stop token was sampled) or "length"
    prompt_index: [R] int32, which prompt each row belongs to
    """

    tokens: np.ndarray
    logprobs: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    finish_reasons: tuple[str, ...]
    prompt_index: np.ndarray

    def completion(self, row: int) -> list[int]:
        """Token ids of one row's completion."""
        return self.tokens[row, : self.lengths[row]].tolist()

    def prompts(self, start: int, stop: int) -> "SampleOutput":
        """The rows of prompts start .. stop - 1, renumbered from 0 (no rows when start == stop)."""
        rows = (self.prompt_index >= start) & (self.prompt_index < stop)
        return SampleOutput(self.tokens[rows], self.logprobs[rows], self.mask[rows], self.lengths[rows],
                            tuple(r for r, keep in zip(self.finish_reasons, rows) if keep),
                            self.prompt_index[rows] - start)


class Sampler(Protocol):
    """What the step samples with: `generate`, or a stand-in (the PyTorch baseline's, a test's scripted one)
    that returns the same rows, so that both run the very same host code. `policy` is whatever the sampler
    decodes with (`generate`: a Decoder); rows are prompt-major, `config.n` per prompt."""

    def __call__(self, policy: Any, prompts: Sequence[Sequence[int]], config: SamplingConfig, /,
                 pad_id: int = 0) -> SampleOutput: ...


@dataclasses.dataclass(frozen=True)
class DecodeStats:
    """How a `sample` call used its slots: `slots` decode slots ran `steps` decode steps, in `chunks`
    jitted chunks, producing `decoded` tokens (each row's first token comes from its prompt's prefill)."""

    slots: int
    steps: int
    chunks: int
    decoded: int

    @property
    def occupancy(self) -> float:
        """Mean fraction of slots doing useful work per decode step."""
        return self.decoded / (self.slots * self.steps) if self.steps else 1.0


def generate(model: Decoder, prompts: Sequence[Sequence[int]], config: SamplingConfig,
             pad_id: int = 0, rules: parallel.Rules = parallel.DEFAULT_RULES,
             progress: Callable[[int], None] | None = None) -> SampleOutput:
    """Samples `config.n` completions for each prompt (a list of token-id lists of any lengths).

    `rules` place the batch and cache arrays when the model's parameters are on a mesh; `progress` is
    called with the rows finished so far after each decode chunk (see `sample`)."""
    return sample(model, prompts, config, pad_id, rules, progress)[0]


def sample(model: Decoder, prompts: Sequence[Sequence[int]], config: SamplingConfig, pad_id: int = 0,
           rules: parallel.Rules = parallel.DEFAULT_RULES,
           progress: Callable[[int], None] | None = None) -> tuple[SampleOutput, DecodeStats]:
    """`generate`, plus how the decode slots were used. `progress`, if given, is called after each decode
    chunk with the number of rows (of len(prompts) * n) finished so far."""
    _validate_prompts(prompts, config)
    graphdef, state = nnx.split(model)
    mesh = parallel.mesh_of(state)
    rules = parallel.decode_rules(rules)
    batch_shards = parallel.shards("batch", mesh, rules)
    ids, mask = _left_padded(prompts, config, pad_id, batch_shards)
    num_prompts, max_new = len(prompts), config.max_new_tokens
    num_slots = decode_slot_count(len(prompts) * config.n, config.decode_slots, batch_shards)
    prompt_len = ids.shape[1]
    cache_len = slot_cache_len(config) if config.decode_slots else prompt_len + max_new
    settings = slot_programs.DrawSettings(config.temperature, config.top_k, config.top_p, config.stop_token_ids,
                                          max_new, pad_id)
    base_key = jax.random.key(config.seed)
    weights = slot_programs.decode_weights(state, mesh=mesh, rules=rules)  # copied once, for this call
    pieces = slot_programs.prefill_pieces(*ids.shape, batch_shards)
    prompt_cache = slot_programs.prefill(graphdef, state, weights, ids, mask, pieces=pieces, mesh=mesh, rules=rules)
    slots = slot_programs.empty_slots(cfg=model.cfg, num_slots=num_slots, cache_len=cache_len, max_new=max_new,
                                      pad_id=pad_id, mesh=mesh, rules=rules)

    queue = collections.deque(range(num_prompts * config.n))  # bucket filler prompts are never decoded
    active, step = np.zeros(num_slots, bool), np.zeros(num_slots, np.int32)
    served = np.full(num_slots, -1)  # the request row each slot serves or last served (-1: none yet)
    ended = []  # (tokens, logprobs [K, M] on the device, their request rows [K], -1 where none)
    chunk = config.decode_chunk if config.decode_slots else max_new
    refill_size = refill_count(config.decode_slots, num_slots)
    steps = chunks = 0
    while True:
        idle = np.flatnonzero(~active)[: len(queue)]
        for start in range(0, len(idle), refill_size):
            part = idle[start : start + refill_size]
            dest, request = np.full(refill_size, num_slots, np.int32), np.zeros(refill_size, np.int32)
            dest[: len(part)] = part
            request[: len(part)] = [queue.popleft() for _ in part]
            slots, held = slot_programs.refill(slots, prompt_cache, dest, request // config.n, request, base_key,
                                               settings=settings, mesh=mesh, rules=rules)
            if (served[part] >= 0).any():  # rows ended in these slots: their completions come to the host
                ended.append((*held, np.pad(served[part], (0, refill_size - len(part)), constant_values=-1)))
            served[part] = request[: len(part)]
        active[idle], step[idle] = True, 1
        if not active.any():
            break
        window = attention_window(config, prompt_len, int(step[active].max())) if config.decode_slots else cache_len
        refill_at = min(len(queue), refill_size) if queue else num_slots + 1
        slots, chunk_progress = slot_programs.decode_chunk(graphdef, state, weights, slots, base_key,
                                                           np.int32(refill_at), settings=settings, steps=chunk,
                                                           window=window, mesh=mesh, rules=rules)
        ran, active, step = (np.array(x) for x in jax.device_get(chunk_progress))
        steps, chunks = steps + int(ran), chunks + 1
        if progress:
            progress(num_prompts * config.n - len(queue) - int(active.sum()))

    ended.append((*slot_programs.completions(slots, mesh=mesh), served))
    output = _output(*_by_request_row(ended, num_prompts * config.n, max_new, pad_id), config, num_prompts)
    decoded = int(output.lengths.sum()) - len(output.lengths)
    return output, DecodeStats(slots=num_slots, steps=steps, chunks=chunks, decoded=decoded)


def _by_request_row(ended, rows: int, max_new: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and log-probs [rows, max_new] of each request row, from the completions slots handed back
    (`ended`: (tokens [K, M], logprobs [K, M], their request rows [K], -1 where a slot served none))."""
    tokens = np.full((rows, max_new), pad_id, np.int32)
    logprobs = np.zeros((rows, max_new), np.float32)
    for held_tokens, held_logprobs, request in ended:
        mine = request >= 0
        tokens[request[mine]] = np.asarray(held_tokens)[mine]
        logprobs[request[mine]] = np.asarray(held_logprobs)[mine]
    return tokens, logprobs


def refill_count(decode_slots: int, num_slots: int) -> int:
    """Rows one refill call starts. A decode chunk also hands back to the host once this many slots are idle
    (and rows wait), so one refill program serves a call and only refilled rows' prompt caches move; the
    static batch starts all its rows at once."""
    return max(1, num_slots // 8) if decode_slots else num_slots


def _left_padded(prompts: Sequence[Sequence[int]], config: SamplingConfig, pad_id: int, batch_shards: int):
    """ids, mask [P', T] int32: the prompts right-aligned in a (count, length) bucket (herl_jax.buckets);
    filler rows repeat prompt 0."""
    count = prompt_bucket_count(len(prompts), batch_shards, config.prompt_count_base)
    length = prompt_bucket_len(max(len(p) for p in prompts), config.prompt_bucket, config.max_prompt_len)
    ids = np.full((count, length), pad_id, np.int32)
    mask = np.zeros((count, length), np.int32)
    for i in range(count):
        prompt = prompts[i if i < len(prompts) else 0]
        ids[i, length - len(prompt):] = prompt
        mask[i, length - len(prompt):] = 1
    return ids, mask


def slot_cache_len(config: SamplingConfig) -> int:
    """C: cache slots per decode slot, the same for every call of a config (the longest prompt bucket plus
    the longest completion), so the decode programs do not depend on a call's prompt length."""
    return round_up(config.max_prompt_len, config.prompt_bucket) + config.max_new_tokens


def attention_window(config: SamplingConfig, prompt_len: int, longest_step: int) -> int:
    """Cache slots the next decode chunk attends over: the prompt bucket and the longest row's completion
    after `decode_chunk` more steps, in a window bucket (herl_jax.buckets.window_bucket)."""
    needed = prompt_len + longest_step + config.decode_chunk - 1  # keys the chunk's last step reads, at most
    return window_bucket(needed, config.cache_block, slot_cache_len(config))


def _output(tokens: np.ndarray, logprobs: np.ndarray, config: SamplingConfig, num_prompts: int) -> SampleOutput:
    """The host-side output; a row ends at its first stop token (the sampler writes padding after it)."""
    is_stop = np.isin(tokens, config.stop_token_ids)
    stopped = is_stop.any(axis=1)
    lengths = np.where(stopped, is_stop.argmax(axis=1) + 1, config.max_new_tokens).astype(np.int32)
    return SampleOutput(
        tokens=tokens,
        logprobs=logprobs,
        mask=np.arange(config.max_new_tokens)[None, :] < lengths[:, None],
        lengths=lengths,
        finish_reasons=tuple("stop" if s else "length" for s in stopped),
        prompt_index=np.repeat(np.arange(num_prompts, dtype=np.int32), config.n),
    )


def _validate_prompts(prompts: Sequence[Sequence[int]], config: SamplingConfig) -> None:
    if len(prompts) == 0:
        raise ValueError("generate() needs at least one prompt")
    for i, prompt in enumerate(prompts):
        if len(prompt) == 0:
            raise ValueError(f"prompt {i} is empty")
        if len(prompt) > config.max_prompt_len:
            raise ValueError(
                f"prompt {i} has {len(prompt)} tokens, over sampling.max_prompt_len={config.max_prompt_len}"
            )
