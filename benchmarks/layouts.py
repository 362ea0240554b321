"""On the lent GPU: the decode step and a training step at the layouts `herl_jax.compiled` predicts, timed,
with the device's own memory figures beside the compiled programs' (issue 23, item 7).

  python benchmarks/layouts.py decode OUT.json [--dry-run]
      Qwen2.5-7B (28 layers, random bf16 weights) decoding 64 slots, the rows of one batch shard at
      decode_slots=64, with every weight whole on the device (the decode layout of any mesh without
      `tensor`), over a 4,096-slot window of a 4,608-slot cache: measured ms per step (chunks of 16 steps
      after a warm-up) beside the prediction of `herl_jax.compiled.decode_step_time` (HBM 3.35 TB/s; on one
      device no collective, so the prediction is the roofline).
  python benchmarks/layouts.py train OUT.json [--dry-run]
      Qwen2.5-7B widths at 4 layers, one micro-batch of 8 rows x 4,096 (bf16 compute, float32 master,
      remat), through the trainer's update path (bucket trainer.sequence_bucket's default; rows 3/4 .. 1 x
      4,096 long, so the micro-batch keeps the full width): measured seconds per optimizer step beside its
      weight-matmul FLOPs (8 N per token: forward, remat forward, backward) at the card's bf16 peak.
--dry-run: tiny shapes on CPU, so the script cannot rot (its figures mean nothing there). Each writes
{"name", "passed", ...figures} for `benchmarks/gpu_checks.py report`; "passed" says it ran, these are
measurements, not checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAK_BF16_FLOPS = 989e12  # H100 SXM dense bf16 (the H200 has the same tensor cores)
DECODE = dict(slots=64, window=4096, cache=4608, chunk=16)
TRAIN = dict(rows=8, seq=4096, layers=4)


def _device_memory() -> dict:
    """The device's own figures (GiB), or {} where the backend keeps none (CPU)."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return {f"device_{k}_gib": stats[k] / 2**30 for k in ("peak_bytes_in_use", "bytes_limit") if k in stats}


def _compiled_memory(compiled) -> dict:
    m = compiled.memory_analysis()
    return {f"compiled_{k}_gib": getattr(m, f"{k}_size_in_bytes") / 2**30 for k in ("argument", "temp", "alias")}


def _model_config(dry_run: bool, **runtime):
    from herl_jax.models import ModelConfig
    from herl_jax.models.shapes import known_model_config

    if dry_run:
        tiny = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
                    architectures=["LlamaForCausalLM"])
        return ModelConfig.from_hf_dict(tiny).replace(**runtime)
    return known_model_config("qwen2.5-7b", **runtime)


def decode(dry_run: bool) -> dict:
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from herl_jax import parallel
    from herl_jax.compiled import HBM_BYTES_PER_S, decode_step_time
    from herl_jax.models import Decoder
    from herl_jax.sampling import slots as slot_programs

    shape = dict(slots=4, window=32, cache=48, chunk=4) if dry_run else DECODE
    cfg = _model_config(dry_run, dtype="bfloat16", param_dtype="bfloat16")
    graphdef, state = nnx.split(Decoder(cfg, nnx.Rngs(0)))
    rules = parallel.decode_rules(parallel.DEFAULT_RULES)
    weights = slot_programs.decode_weights(state, mesh=None, rules=rules)
    slots = slot_programs.empty_slots(cfg=cfg, num_slots=shape["slots"], cache_len=shape["cache"],
                                      max_new=shape["cache"], pad_id=0, mesh=None, rules=rules)
    busy = jnp.ones(shape["slots"], bool)  # every slot decoding, its keys filling the window's first half
    slots = dataclasses.replace(slots, active=busy, step=jnp.ones(shape["slots"], jnp.int32),
                                cache=dataclasses.replace(slots.cache, index=jnp.full(shape["slots"], shape["window"] // 2)))
    settings = slot_programs.DrawSettings(1.0, 0, 1.0, (), shape["cache"])
    args = dict(settings=settings, steps=shape["chunk"], window=shape["window"], mesh=None, rules=rules)
    never = np.int32(shape["slots"] + 1)  # no early stop for refills
    key = jax.random.key(0)
    compiled = slot_programs.decode_chunk.trace(graphdef, state, weights, slots, key, never, **args).lower().compile()
    fresh = jax.tree.map(jnp.copy, slots)
    fresh, progress = slot_programs.decode_chunk(graphdef, state, weights, fresh, key, never, **args)  # warm-up
    jax.block_until_ready(progress)
    chunks, start = 3, time.perf_counter()
    for _ in range(chunks):
        fresh, progress = slot_programs.decode_chunk(graphdef, state, weights, fresh, key, never, **args)
    jax.block_until_ready(progress)
    measured = (time.perf_counter() - start) / (chunks * shape["chunk"])
    weight_bytes = sum(x.nbytes for x in jax.tree.leaves(weights))
    kv_bytes = shape["slots"] * shape["window"] * cfg.num_layers * 2 * cfg.num_kv_heads * cfg.head_dim * 2
    predicted, roofline = decode_step_time(weight_bytes + kv_bytes, 0, 0)
    return dict(name="decode step at the decode layout (measured vs predicted)", passed=bool(measured > 0),
                shape=f"{cfg.num_layers} layers, {shape['slots']} slots, window {shape['window']} of {shape['cache']}",
                measured_ms=measured * 1e3, predicted_ms=predicted * 1e3, roofline_ms=roofline * 1e3,
                measured_over_roofline=measured / roofline, hbm_tb_per_s=HBM_BYTES_PER_S / 1e12,
                read_gib=(weight_bytes + kv_bytes) / 2**30, tokens_per_s=shape["slots"] / measured,
                **_compiled_memory(compiled), **_device_memory())


def train(dry_run: bool) -> dict:
    import types

    import jax
    from flax import nnx

    from benchmarks.train_step import make_batch
    from herl_jax.models import Decoder
    from herl_jax.learner import Learner, LearnerConfig, LossConfig, OptimConfig, PPOConfig, make_optimizer
    from herl_jax.training.run_config import TrainerSection

    shape = dict(rows=2, seq=32, layers=2) if dry_run else TRAIN
    bucket = TrainerSection.sequence_bucket
    cfg = _model_config(dry_run, dtype="bfloat16", param_dtype="float32", remat=True).replace(num_layers=shape["layers"])
    model = Decoder(cfg, nnx.Rngs(0))
    learner = Learner(model, make_optimizer(OptimConfig()),
                      LearnerConfig.of(LossConfig(), PPOConfig(micro_batch_size=shape["rows"]), temperature=1.0))
    state = learner.init_state(model)
    batch = make_batch(types.SimpleNamespace(batch=shape["rows"], seq=shape["seq"]), cfg.vocab_size)
    old = learner.compute_logprobs(state.params, batch, bucket)
    state, metrics = learner.optimizer_step(state, batch, old, old, bucket_size=bucket)  # warm-up: compiles
    jax.block_until_ready(metrics)
    steps, start = 2, time.perf_counter()
    for _ in range(steps):
        state, metrics = learner.optimizer_step(state, batch, old, old, bucket_size=bucket)
    jax.block_until_ready(metrics)
    measured = (time.perf_counter() - start) / steps
    layer_params = sum(x.size for x in jax.tree.leaves(nnx.state(model.layers, nnx.Param)))
    head_params = cfg.hidden_size * cfg.vocab_size  # the LM head's matmul (the embedding is a lookup)
    flops = 8 * (layer_params + head_params) * shape["rows"] * shape["seq"]
    return dict(name="training step at the training layout (measured vs FLOPs at peak)", passed=bool(measured > 0),
                shape=f"{cfg.num_layers} layers, {shape['rows']} rows x {shape['seq']}, remat",
                measured_s=measured, flops_bound_s=flops / PEAK_BF16_FLOPS, mfu=flops / PEAK_BF16_FLOPS / measured,
                **_device_memory())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("decode", "train"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    result = (decode if args.part == "decode" else train)(args.dry_run)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
