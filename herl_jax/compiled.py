"""Compile a training config's real programs at real shapes for N devices, and report what each one
communicates and holds, without a GPU:

  python -m herl_jax.compiled --config configs/paper.py:qwen2.5-7b,herl,if --num_devices=8 \
      [--config.parallel.fsdp=8 ...] [--layers=2] [--json=out.json]

The programs are the project's own jitted functions (the learner's micro-batch forward + backward, log-probs
and optimizer step; the sampler's weight copy, prefill, refill and decode chunk), lowered with abstract
parameters (`nnx.eval_shape`, `jax.ShapeDtypeStruct`s carrying each parameter's NamedSharding: nothing is
allocated) and compiled for N fake CPU devices (`--xla_force_host_platform_device_count`; the command
restarts itself with it). Collectives are read from the HLO right after the SPMD partitioner
(herl_jax.parallel.hlo_traffic): that is where XLA decides them, for any backend.

Memory is the CPU compiler's `memory_analysis()`: arguments, outputs and aliases are exact for a GPU too
(they are the sharded arrays); temporaries are the CPU schedule's and only indicative: a GPU fuses
differently, and on it attention runs in cuDNN's fused kernel, while the CPU program materializes the
[rows, heads, T, T] float32 scores of XLA attention.

`--layers` compiles a shallower model of the same widths (the CI test does): the layers are scanned in
training and unrolled in the sampler, so per-layer figures are the same at any depth.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

GIB = 1024**3
_DUMP_FLAGS = "--xla_dump_hlo_pass_re=spmd-partitioning --xla_dump_hlo_as_text"


@dataclasses.dataclass(frozen=True)
class ProgramReport:
    """One compiled program: what one device sends and holds when it runs once (`per`)."""

    name: str
    shape: str  # what it was compiled for, in words
    per: str  # "call", or "decode step" for the decode loop (collectives of one iteration)
    collectives: int
    bytes_sent: float  # per device
    by_kind: dict[str, tuple[int, float]]  # kind -> (executions, bytes sent per device)
    argument_bytes: int
    output_bytes: int
    alias_bytes: int
    temp_bytes: int
    compile_s: float
    ideal_bytes: float | None = None  # FSDP's ideal bytes sent, where one is defined
    predicted_s: float | None = None  # decode: a step's time predicted on the reference GPU (decode_step_time)
    roofline_s: float | None = None  # decode: one GPU reading the same weights and its rows' keys, alone
    estimated_temp_bytes: int | None = None  # herl_jax.memory_plan's estimate of temp_bytes, where made


# The reference GPU of the predictions: an H100 SXM's HBM3 bandwidth, one direction of NVLink 4, and the
# latency of one small NCCL collective within a node.
HBM_BYTES_PER_S = 3.35e12
LINK_BYTES_PER_S = 450e9
COLLECTIVE_LATENCY_S = 20e-6


def decode_step_time(read_bytes: float, collectives: int, sent_bytes: float) -> tuple[float, float]:
    """(predicted, roofline) seconds of one decode step on one device of the mesh: it reads `read_bytes`
    from HBM (its weights and its rows' keys and values) and runs `collectives` sending `sent_bytes`; the
    roofline is the HBM read alone, what one GPU decoding the same rows could not beat."""
    roofline = read_bytes / HBM_BYTES_PER_S
    return roofline + collectives * COLLECTIVE_LATENCY_S + sent_bytes / LINK_BYTES_PER_S, roofline


def fsdp_ideal_bytes(param_bytes: int, group: int) -> float:
    """Bytes one device sends in an ideal FSDP forward + remat backward over a group of `group` devices:
    the parameters (in the compute dtype, `param_bytes`) all-gathered twice and their gradient
    reduce-scattered once, (n-1)/n of them each time."""
    return 3 * (group - 1) / group * param_bytes


def _requested_devices(argv: list[str]) -> int:
    """--num_devices from the command line before absl parses it (JAX fixes its device count when it
    starts); 8 when absent or not a positive integer (absl then names the bad value)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--num_devices=") else (
            argv[i + 1] if arg == "--num_devices" and i + 1 < len(argv) else None)
        if value is not None:
            return int(value) if value.isdigit() and int(value) > 0 else 8
    return 8


def ensure_devices(num_devices: int) -> None:
    """Restart this command with N fake CPU devices and the partitioned HLO dumped into a new temporary
    directory (HERL_HLO_DUMP; removed when the command ends), unless already so."""
    if os.environ.get("HERL_HLO_DUMP"):
        return
    dump_dir = tempfile.mkdtemp(prefix="herl-hlo-")
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (f"{flags} --xla_force_host_platform_device_count={num_devices} "
                               f"--xla_dump_to={dump_dir} {_DUMP_FLAGS}").strip()
    os.environ.update(JAX_PLATFORMS="cpu", HERL_HLO_DUMP=dump_dir)
    os.execv(sys.executable, [sys.executable, "-m", "herl_jax.compiled", *sys.argv[1:]])


class _Compiler:
    """Compiles jitted functions on abstract arguments and reads each one's partitioned HLO from the dump."""

    def __init__(self, dump_dir: Path, num_devices: int):
        self.dump_dir, self.num_devices, self.seen = dump_dir, num_devices, set()
        self.traffic = {}  # a lowered program's text -> its traffic: JAX compiles a repeated program once

    def __call__(self, name, shape, jitted, *args, per="call", ideal=None, estimate=None,
                 **kwargs) -> tuple[ProgramReport, object]:
        """(the report, the program's outputs as ShapeDtypeStructs with their shardings, to feed the next)."""
        import jax

        from herl_jax.parallel.hlo_traffic import Traffic, collective_traffic

        start = time.perf_counter()
        lowered = jitted.trace(*args, **kwargs).lower()
        compiled = lowered.compile()
        seconds = time.perf_counter() - start
        dumps = sorted(p for p in self.dump_dir.glob("*after_spmd-partitioning*.txt") if p not in self.seen)
        self.seen.update(dumps)
        program = lowered.as_text()
        if dumps:
            self.traffic[program] = collective_traffic(dumps[-1].read_text(), self.num_devices)
        elif self.num_devices == 1:  # XLA partitions nothing, and nothing is sent
            self.traffic[program] = Traffic((), 0)
        elif program not in self.traffic:
            raise RuntimeError(f"{name}: no partitioned HLO was dumped into {self.dump_dir}")
        traffic = self.traffic[program]
        memory = compiled.memory_analysis()
        outputs = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), compiled.out_info)
        return ProgramReport(name, shape, per, traffic.count, traffic.bytes_sent, traffic.by_kind(),
                             memory.argument_size_in_bytes, memory.output_size_in_bytes, memory.alias_size_in_bytes,
                             memory.temp_size_in_bytes, seconds, ideal, estimated_temp_bytes=estimate), outputs


@dataclasses.dataclass(frozen=True)
class _Model:
    """A config's model on the mesh, abstract: its graph, float32 master and compute-dtype parameters
    (ShapeDtypeStructs carrying their shardings), and how to describe more abstract arrays."""

    cfg: object
    graphdef: object
    params: object  # nnx.State of ShapeDtypeStructs, unsharded
    master: object
    compute: object
    mesh: object
    rules: object

    def host(self, shape, dtype):
        """An abstract array replicated on the mesh (what the host hands a program)."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(self.mesh, PartitionSpec()))

    def abstract(self, tree, dtype=None):
        """`tree` as abstract arrays laid out by the rules (in `dtype` if given)."""
        return _abstract(tree, self.mesh, self.rules, dtype)


def _abstract(tree, mesh, rules, dtype=None):
    import jax

    from herl_jax import parallel

    shardings = parallel.tree_shardings(tree, mesh, rules)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, dtype or x.dtype, sharding=s), tree, shardings)


def compile_programs(config, num_devices: int, layers: int | None, dump_dir: Path) -> tuple[list[ProgramReport], dict]:
    """The reports of every program of `config` on `num_devices` devices, and the programs' counts."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from herl_jax import parallel
    from herl_jax.models import Decoder
    from herl_jax.memory_plan import model_config_for

    m = config.model
    cfg, _ = model_config_for(m.source, dtype=m.dtype, param_dtype="float32", attention_impl=m.attention_impl,
                              remat=m.remat)
    if layers:
        cfg = dataclasses.replace(cfg, num_layers=layers)
    mesh = parallel.make_mesh(parallel.MeshConfig.from_config(config.parallel), jax.devices()[:num_devices])
    graphdef, params = nnx.split(nnx.eval_shape(lambda: Decoder(cfg, nnx.Rngs(0))), nnx.Param)
    rules = parallel.DEFAULT_RULES
    model = _Model(cfg, graphdef, params, _abstract(params, mesh, rules),
                   _abstract(params, mesh, rules, jnp.dtype(cfg.dtype)), mesh, rules)
    compile_one = _Compiler(dump_dir, num_devices)
    sampler_reports, shards = _sampler_reports(config, model, compile_one)
    return _training_reports(config, model, compile_one) + sampler_reports, program_counts(config, shards)


def _training_reports(config, model: _Model, compile_one: _Compiler) -> list[ProgramReport]:
    """The learner's programs: a micro-batch forward + backward and its log-probs at each training width,
    and the optimizer step."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from herl_jax import parallel
    from herl_jax.config import validate
    from herl_jax.memory_plan import optimizer_temporaries, peak_temporaries, training_length, training_temporaries
    from herl_jax.learner.learner import Learner
    from herl_jax.learner.loss import Normalizer
    from herl_jax.learner.optim import make_optimizer

    run, host = validate(config), model.host
    tx = make_optimizer(run.optim)
    learner = Learner(nnx.merge(model.graphdef, model.master), tx, run.learner, model.rules)
    param_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(model.compute))
    ideal = fsdp_ideal_bytes(param_bytes, parallel.shards("embed", model.mesh, model.rules))
    reports, rows = [], run.learner.micro_batch_size
    for width in sorted({_training_width(config, "rollout"), training_length(config)}):
        micro = {k: host((rows, width), jnp.int32) for k in ("input_ids", "attention_mask", "positions", "targets")}
        inputs = dict(micro)
        micro.update(loss_mask=host((rows, width), jnp.bool_), advantages=host((rows,), jnp.float32),
                     is_revision=host((rows,), jnp.bool_))
        logp = host((rows, width), jnp.float32)
        normalizer = Normalizer(*(host((), jnp.float32) for _ in Normalizer._fields))
        shape = f"{rows} rows x {width}"

        def estimate(backward):
            phases = training_temporaries(model.cfg, rows, width, run.learner.logprob_chunk_size, backward=backward)
            return peak_temporaries(phases, model.mesh, model.rules)

        reports.append(compile_one("train micro-batch", shape, learner._accumulate, model.compute, model.master, micro,
                                   logp, logp, normalizer, ideal=ideal, estimate=estimate(True))[0])
        reports.append(compile_one("log-probs", shape, learner._compute_logprobs, model.compute, inputs,
                                   ideal=ideal / 3, estimate=estimate(False))[0])
    state = type(learner.state_shardings)(model.master, model.abstract(jax.eval_shape(tx.init, model.params)),
                                          host((), jnp.int32))
    reports.append(compile_one("optimizer step", "all parameters", learner._apply, state, model.master,
                               host((), jnp.float32),
                               estimate=peak_temporaries(optimizer_temporaries(model.params), model.mesh,
                                                         model.rules))[0])
    return reports


def _sampler_reports(config, model: _Model, compile_one: _Compiler) -> tuple[list[ProgramReport], int]:
    """The sampler's programs in the decode layout: the weight copy, and per sampler call its prefill,
    refill and decode step (with the step's predicted time); and the batch shards they run on."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from herl_jax import parallel
    from herl_jax.memory_plan import decode_temporaries, peak_temporaries, prefill_temporaries, sampler_calls
    from herl_jax.sampling import slots as slot_programs

    cfg, graphdef, mesh, host = model.cfg, model.graphdef, model.mesh, model.host
    decode = parallel.decode_rules(model.rules)
    shards = parallel.shards("batch", mesh, decode)
    state = nnx.State(dict(model.compute.items()))
    reports, weights = _weight_copy_reports(model, state, compile_one, decode)
    head_copy, layer_copy = reports
    weight_bytes = head_copy.output_bytes + cfg.num_layers * layer_copy.output_bytes
    key = jax.eval_shape(lambda: jax.random.key(0))
    for call in sampler_calls(config, shards):
        section = config.rollout if call.name != "revisions" else config.revision
        ids = host((call.padded_prompts, call.prompt_len), jnp.int32)
        pieces = slot_programs.prefill_pieces(call.padded_prompts, call.prompt_len, shards)
        prefill_report, prompts = compile_one(
            "prefill", f"{call.name}: {call.padded_prompts} prompts x {call.prompt_len}, {pieces} pieces",
            slot_programs.prefill, graphdef, state, weights, ids, ids, pieces=pieces, mesh=mesh, rules=decode,
            estimate=peak_temporaries(prefill_temporaries(cfg, call.prefill_rows, call.prompt_len), mesh, decode))
        _, slots = compile_one("empty slots", "", slot_programs.empty_slots, cfg=cfg, num_slots=call.slots,
                               cache_len=call.prompt_len + call.max_new, max_new=call.max_new,
                               pad_id=0, mesh=mesh, rules=decode)
        settings = slot_programs.DrawSettings(section.temperature, section.top_k, section.top_p, (0,), call.max_new)
        refill_reports = _refill_reports(model, call, slots, prompts, key, settings, compile_one, decode)
        window = call.prompt_len + call.max_new
        step = compile_one("decode step", f"{call.name}: {call.slots} slots, window {window}",
                           slot_programs.decode_chunk, graphdef, state, weights, slots, key, np.int32(1),
                           settings=settings, steps=section.decode_chunk, window=window, mesh=mesh, rules=decode,
                           per="decode step",
                           estimate=peak_temporaries(decode_temporaries(cfg, call.slots, window), mesh, decode))[0]
        # Read per step: this device's weights, and its rows' keys and values over the (largest) window.
        rows_here = math.ceil(call.slots / shards)
        kv_read = rows_here * window * cfg.num_layers * 2 * cfg.num_kv_heads * cfg.head_dim * jnp.dtype(cfg.dtype).itemsize
        predicted, roofline = decode_step_time(weight_bytes + kv_read, step.collectives, step.bytes_sent)
        reports += [prefill_report, *refill_reports, dataclasses.replace(step, predicted_s=predicted,
                                                                             roofline_s=roofline)]
    return reports, shards


def _weight_copy_reports(model: _Model, state, compile_one: _Compiler, decode) -> tuple[list[ProgramReport], object]:
    """The sampler's weight copy, a program for the head and one run per layer: their reports, and the
    copied weights (abstract) for the programs that read them."""
    import jax.numpy as jnp

    from herl_jax.memory_plan import peak_temporaries, weight_copy_temporaries
    from herl_jax.models.decoder import outside_layers
    from herl_jax.sampling import slots as slot_programs

    cfg, mesh = model.cfg, model.mesh
    copy = weight_copy_temporaries(model.params, jnp.dtype(cfg.dtype).itemsize)
    head_report, head = compile_one("decode weights copy", "embedding, norm, LM head",
                                    slot_programs.decode_head_weights, outside_layers(state), mesh=mesh, rules=decode,
                                    estimate=peak_temporaries({"head": copy["head"]}, mesh, decode))
    layer_report, layer = compile_one("decode weights copy", f"one layer (run {cfg.num_layers} times a call)",
                                      slot_programs.decode_layer_weights, state["layers"], model.host((), jnp.int32),
                                      mesh=mesh, rules=decode,
                                      estimate=peak_temporaries({"layer": copy["layer"]}, mesh, decode))
    return [head_report, layer_report], slot_programs.DecodeWeights(head=head, layers=(layer,) * cfg.num_layers)


def _refill_reports(model: _Model, call, slots, prompts, key, settings, compile_one: _Compiler,
                    decode) -> list[ProgramReport]:
    """A sampler call's refill: the program for the slots' rows and the one run per layer."""
    import jax.numpy as jnp

    from herl_jax.memory_plan import peak_temporaries, refill_temporaries
    from herl_jax.sampling import slots as slot_programs

    cfg, mesh, count = model.cfg, model.mesh, call.refill_size
    assign = model.host((count,), jnp.int32)
    refilled = f"{call.name}: {count} of {call.slots} slots"
    refill = refill_temporaries(cfg, count, call.prompt_len)
    rows = compile_one("refill", f"{refilled}, rows", slot_programs.refill_rows,
                       slot_programs.without_keys_values(slots), slot_programs.without_keys_values(prompts), assign,
                       assign, assign, key, settings=settings, mesh=mesh, rules=decode,
                       estimate=peak_temporaries({"rows": refill["rows"]}, mesh, decode))[0]
    layer = compile_one("refill", f"{refilled}, one layer (run {cfg.num_layers} times a call)",
                        slot_programs.refill_layer, slots.cache.k[0], slots.cache.v[0], prompts.cache.k[0],
                        prompts.cache.v[0], assign, assign, mesh=mesh, rules=decode,
                        estimate=peak_temporaries({"layer": refill["layer"]}, mesh, decode))[0]
    return [rows, layer]


def _training_width(config, section: str) -> int:
    """The widest training row of one kind: a prompt plus its completion, bucketed like the update."""
    from herl_jax.buckets import round_up

    s = config[section]
    return round_up(s.max_prompt_len + s.max_new_tokens, config.trainer.sequence_bucket)


def program_counts(config, batch_shards: int) -> dict[str, int]:
    """How many distinct prefill and decode-chunk programs the config's buckets can compile (each a
    compilation of its own), found by enumerating every call the trainer can make: per sampler call kind,
    each padded prompt count and prompt length prefills, and decodes with the slot count of its real rows
    over every attention window they can reach (herl_jax.buckets; the static batch decodes once over the
    whole cache)."""
    from herl_jax.buckets import decode_slot_count, prompt_bucket_count, prompt_bucket_len
    from herl_jax.memory_plan import sampler_calls
    from herl_jax.sampling import SamplingConfig
    from herl_jax.sampling.sampler import attention_window, slot_cache_len

    shapes: dict[str, set] = {"prefill": set(), "decode_chunk": set()}
    for call in sampler_calls(config, batch_shards):
        section = config.rollout if call.name != "revisions" else config.revision
        sampling = SamplingConfig(max_new_tokens=section.max_new_tokens, decode_chunk=section.decode_chunk,
                                  cache_block=section.cache_block, max_prompt_len=section.max_prompt_len,
                                  prompt_bucket=section.prompt_bucket)
        lengths = {prompt_bucket_len(n, section.prompt_bucket, section.max_prompt_len)
                   for n in range(1, section.max_prompt_len + 1)}
        sizes = {(prompt_bucket_count(p, batch_shards, section.prompt_count_base),
                  decode_slot_count(p * call.n, section.decode_slots, batch_shards))
                 for p in range(1, call.prompts + 1)}  # (padded prompts, slots) of each prompt count
        for count, slots in sizes:
            for length in lengths:
                shapes["prefill"].add((count, length))
                if not section.decode_slots:
                    shapes["decode_chunk"].add((slots, length + call.max_new, length + call.max_new))
                    continue
                cache_len = slot_cache_len(sampling)
                for step in range(1, call.max_new + 1):
                    shapes["decode_chunk"].add((slots, cache_len, attention_window(sampling, length, step)))
    return {name: len(found) for name, found in shapes.items()}


def format_reports(reports: list[ProgramReport], counts: dict[str, int], header: str) -> str:
    lines = [header, "", f"{'program':<22}{'shape':<44}{'per':<12}{'colls':>7}{'sent GiB':>10}{'ideal':>8}"
             f"{'args GiB':>10}{'out':>7}{'alias':>7}{'temp GiB':>10}{'plan':>7}{'compile s':>11}"]
    for r in reports:
        ideal = f"{r.ideal_bytes / GIB:8.2f}" if r.ideal_bytes is not None else f"{'':>8}"
        planned = f"{r.estimated_temp_bytes / GIB:7.2f}" if r.estimated_temp_bytes is not None else f"{'':>7}"
        lines.append(f"{r.name:<22}{r.shape:<44}{r.per:<12}{r.collectives:>7}{r.bytes_sent / GIB:>10.2f}{ideal}"
                     f"{r.argument_bytes / GIB:>10.2f}{r.output_bytes / GIB:>7.2f}{r.alias_bytes / GIB:>7.2f}"
                     f"{r.temp_bytes / GIB:>10.2f}{planned}{r.compile_s:>11.1f}")
    lines.append("")
    for r in reports:
        kinds = ", ".join(f"{k} {n} x = {b / GIB:.2f} GiB" for k, (n, b) in r.by_kind.items()) or "none"
        lines.append(f"{r.name} ({r.shape}): {kinds}")
    for r in reports:
        if r.predicted_s is not None:
            lines.append(f"{r.name} ({r.shape}): predicted {r.predicted_s * 1e3:.2f} ms per step on the reference GPU "
                         f"vs {r.roofline_s * 1e3:.2f} ms one-GPU HBM roofline ({r.predicted_s / r.roofline_s:.2f}x; "
                         f"HBM {HBM_BYTES_PER_S / 1e12:g} TB/s, link {LINK_BYTES_PER_S / 1e9:g} GB/s, "
                         f"{COLLECTIVE_LATENCY_S * 1e6:g} us a collective)")
    lines += ["", "distinct programs the config's buckets can compile: "
              + ", ".join(f"{name} {count}" for name, count in counts.items())]
    return "\n".join(lines)


def main(argv) -> None:
    import json

    import jax

    from herl_jax import parallel
    from herl_jax.cli_errors import UsageError
    from herl_jax.config import validate
    from herl_jax.plan import default_device_count

    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    for flag in (_NUM_DEVICES, _LAYERS):
        if flag.value is not None and flag.value < 1:
            raise UsageError(f"--{flag.name}={flag.value}: must be >= 1")
    config = _CONFIG.value
    validate(config)
    num_devices = _NUM_DEVICES.value or default_device_count(config)
    if jax.device_count() < num_devices:
        raise UsageError(f"the config's mesh needs {num_devices} devices; pass --num_devices={num_devices} (the "
                         f"command started {jax.device_count()} fake CPU devices)")
    reports, counts = compile_programs(config, num_devices, _LAYERS.value, Path(os.environ["HERL_HLO_DUMP"]))
    cfg_layers = f", {_LAYERS.value} layers" if _LAYERS.value else ""
    mesh = parallel.MeshConfig.from_config(config.parallel).shape(num_devices)
    print(format_reports(reports, counts, f"{config.model.source}{cfg_layers} on {num_devices} devices, mesh {mesh}"))
    if _JSON.value:
        Path(_JSON.value).write_text(json.dumps(dict(programs=[dataclasses.asdict(r) for r in reports],
                                                     counts=counts), indent=1))


if __name__ == "__main__":
    ensure_devices(_requested_devices(sys.argv[1:]))
    atexit.register(shutil.rmtree, os.environ["HERL_HLO_DUMP"], True)

    from absl import app, flags
    from ml_collections import config_flags

    from herl_jax.cli_errors import run_cli
    from herl_jax.config import parse_flags

    _CONFIG = config_flags.DEFINE_config_file("config", None, "training config file (see configs/)")
    _NUM_DEVICES = flags.DEFINE_integer("num_devices", None, "devices to compile for (default: the product of "
                                        "config.parallel's sizes)")
    _LAYERS = flags.DEFINE_integer("layers", None, "compile a model of this depth (default: the model's)")
    _JSON = flags.DEFINE_string("json", None, "also write the reports to this JSON file")
    flags.mark_flags_as_required(["config"])
    run_cli(lambda: app.run(main, flags_parser=parse_flags))
