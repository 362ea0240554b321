"""Train-step throughput: our jitted JAX step against the PyTorch baseline, same shapes, in one run.

  CPU:  python benchmarks/train_step.py                (SmolLM2-135M shape, random weights, fp32,
                                                        4 x 256 tokens in micro-batches of 2)
  GPU:  python benchmarks/train_step.py --device gpu   (Qwen2.5-0.5B shape, random weights, 8 x 1024
                                                        tokens, fp32 master params + bf16 compute)
One step is one PPO mini-batch: forward + backward over its micro-batches with the HeRL loss (the
paper's defaults, KL to a reference included), global-norm clipping, AdamW. JAX: the trainer's update
path, ``Learner.optimizer_step`` on the host batch (compute dtype bf16 on GPU): rows sorted by length
into micro-batches, each trimmed to its longest row rounded up to --bucket (default: the trainer's
``trainer.sequence_bucket``). PyTorch: a transformers model of the same shape, the torch loss in
baselines/torch and torch.optim.AdamW (fused on GPU), under bf16 autocast on GPU, every row at full
width. Rows are 3T/4 .. T long, so at the default shapes every JAX micro-batch keeps the full width and
both sides do the same work. Old and reference log-probs are computed before timing (JAX: as the trainer
does, ``Learner.compute_logprobs`` over the same micro-batches); the first step (JAX compiles in it) is
timed on its own. Each framework runs in its own subprocess, so peak memory is its own and JAX does not
preallocate beside torch.

tokens/s counts every position of the batch (B x T). MFU = 6 x params x tokens/s / peak FLOP/s, with
the peak from --peak-tflops (default on GPU: 808, the bf16 matmul rate measured on the H100; none on
CPU, where the JAX / torch ratio is the figure). Prints a table last and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make herl_jax and baselines importable

from benchmarks import side_by_side  # noqa: E402

from herl_jax.models.shapes import KNOWN_MODELS, known_model_config  # noqa: E402
from herl_jax.training.run_config import TrainerSection  # noqa: E402

DEFAULTS = {
    "cpu": dict(model="smollm2-135m", batch=4, seq=256, micro_batch=2, dtype="float32", steps=3, warmup=1,
                peak_tflops=None),
    "gpu": dict(model="qwen2.5-0.5b", batch=8, seq=1024, micro_batch=8, dtype="bfloat16", steps=10, warmup=2,
                peak_tflops=808.0),
}


def model_config(args):
    cfg = known_model_config(args.model, dtype=args.dtype, param_dtype="float32", remat=args.remat)
    return cfg.replace(num_layers=args.num_layers) if args.num_layers else cfg


def make_batch(args, vocab_size: int) -> dict[str, np.ndarray]:
    """B rows of T = seq tokens: a seq/4 context and a response of seq/2 .. 3seq/4 tokens; every 8th
    row a revision; advantages ~ N(0, 1); sampler log-probs present (so the gap metric runs)."""
    from herl_jax.herl import TrainingRecord, collate

    rng = np.random.default_rng(0)
    context = args.seq // 4
    records = []
    for i in range(args.batch):
        response = int(rng.integers(args.seq // 2, args.seq - context + 1))
        records.append(TrainingRecord(
            rng.integers(1, vocab_size, context), rng.integers(1, vocab_size, response),
            advantage=float(rng.normal()), reward=0.0, is_revision=i % 8 == 7,
            sampler_logprobs=-rng.uniform(0.0, 3.0, response)))
    return collate(records, pad_id=0, bucket_size=args.seq, batch_size=args.batch)


def timed_first_step(step) -> float:
    """Seconds of the first step: compiles (JAX) or warms up (PyTorch), then runs."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def timed_steps(step, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def peak_host_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_jax(args) -> dict:
    import jax
    from flax import nnx

    from herl_jax.models import Decoder
    from herl_jax.learner import Learner, LearnerConfig, LossConfig, OptimConfig, PPOConfig, make_optimizer

    cfg = model_config(args)
    model = Decoder(cfg, nnx.Rngs(0))
    ppo = PPOConfig(micro_batch_size=args.micro_batch, logprob_chunk_size=args.chunk)
    learner = Learner(model, make_optimizer(OptimConfig()), LearnerConfig.of(LossConfig(), ppo, temperature=1.0))
    state = learner.init_state(model)
    del model
    batch = make_batch(args, cfg.vocab_size)  # on the host, as the trainer hands it over
    old = learner.compute_logprobs(state.params, batch, args.bucket)
    ref = old  # the reference policy is the initial one here

    metrics = {}

    def step():
        nonlocal state, metrics
        state, metrics = learner.optimizer_step(state, batch, old, ref, bucket_size=args.bucket)
        jax.block_until_ready((state, metrics))

    first_step_s = timed_first_step(step)  # compiles the step's programs
    times = timed_steps(step, args.warmup, args.steps)
    stats = jax.devices()[0].memory_stats() or {}
    return dict(
        times=times, first_step_s=first_step_s, loss=float(metrics["loss"]), device=jax.devices()[0].device_kind,
        version=f"jax {jax.__version__}",
        peak_device_mib=stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None,
        peak_host_mib=peak_host_mib(),
    )


def run_torch(args) -> dict:
    import torch
    import transformers

    from baselines.torch.loss import LossConfig
    from herl_jax.learner.config import OptimConfig
    from baselines.torch.train_step import compute_logprobs, train_step

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if args.device == "gpu" else "cpu")
    autocast = torch.bfloat16 if args.dtype == "bfloat16" else None
    hf = model_config(args).to_hf_dict()
    config = transformers.AutoConfig.for_model(hf.pop("model_type"), **hf)
    torch.manual_seed(0)
    with device:
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    optim = OptimConfig()
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=(optim.b1, optim.b2), eps=optim.eps,
                                  weight_decay=optim.weight_decay, fused=device.type == "cuda")
    batch = {k: torch.from_numpy(v).to(device) for k, v in make_batch(args, config.vocab_size).items()}
    old = compute_logprobs(model, batch, micro_batch_size=args.micro_batch, autocast_dtype=autocast)
    ref = old
    metrics = {}

    def step():
        nonlocal metrics
        metrics = train_step(model, optimizer, batch, old, ref, LossConfig(), micro_batch_size=args.micro_batch,
                             max_grad_norm=optim.max_grad_norm, autocast_dtype=autocast)
        if device.type == "cuda":
            torch.cuda.synchronize()

    first_step_s = timed_first_step(step)
    times = timed_steps(step, args.warmup, args.steps)
    on_gpu = device.type == "cuda"
    return dict(
        times=times, first_step_s=first_step_s, loss=float(metrics["loss"]),
        device=torch.cuda.get_device_name() if on_gpu else platform.processor() or "cpu",
        version=f"torch {torch.__version__}, transformers {transformers.__version__}",
        threads=torch.get_num_threads() if not on_gpu else None,
        peak_device_mib=torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
        peak_host_mib=peak_host_mib(),
    )


def summarize(name: str, result: dict, args, num_params: int) -> dict:
    step_s = float(np.median(result["times"]))
    tokens_per_s = args.batch * args.seq / step_s
    tflops = 6 * num_params * tokens_per_s / 1e12
    return dict(framework=name, step_ms=1e3 * step_s, tokens_per_s=tokens_per_s, model_tflops=tflops,
                mfu=tflops / args.peak_tflops if args.peak_tflops else None, **result)


def print_table(rows: list[dict], args) -> None:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    print(f"\ntrain step, {args.model} shape, {args.batch} x {args.seq} tokens, micro-batch {args.micro_batch}, "
          f"bucket {args.bucket}, {args.dtype}, {args.device} ({rows[0]['device']})")
    print(f"{'framework':<10}{'step ms':>10}{'tokens/s':>11}{'TFLOP/s':>9}{'MFU':>7}{'1st step s':>12}"
          f"{'peak dev MiB':>14}{'peak host MiB':>15}")
    for r in rows:
        print(f"{r['framework']:<10}{r['step_ms']:>10.1f}{r['tokens_per_s']:>11.0f}{r['model_tflops']:>9.3f}"
              f"{fmt(r['mfu'], '.1%'):>7}{r['first_step_s']:>12.1f}{fmt(r['peak_device_mib'], '.0f'):>14}"
              f"{r['peak_host_mib']:>15.0f}")
    print(f"JAX / torch tokens/s: {rows[0]['tokens_per_s'] / rows[1]['tokens_per_s']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--model", choices=sorted(KNOWN_MODELS))
    parser.add_argument("--num-layers", type=int, help="keep only this many layers of the --model shape")
    parser.add_argument("--batch", type=int, help="rows per mini-batch")
    parser.add_argument("--seq", type=int, help="tokens per row")
    parser.add_argument("--micro-batch", type=int, help="rows per forward/backward")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="compute dtype (params stay fp32)")
    parser.add_argument("--steps", type=int, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, help="untimed steps after compiling")
    parser.add_argument("--peak-tflops", type=float, help="peak FLOP/s of the device, for MFU")
    parser.add_argument("--chunk", type=int, default=128, help="JAX: positions per LM-head chunk")
    parser.add_argument("--bucket", type=int, default=TrainerSection.sequence_bucket,
                        help="JAX: micro-batch widths are multiples of this (trainer.sequence_bucket)")
    parser.add_argument("--remat", action="store_true", help="JAX: recompute each layer in the backward pass")
    parser.add_argument("--torch-threads", type=int, help="torch CPU threads (default: torch's, one per core); "
                        "on a shared CPU, OpenMP's spinning threads can run slower than one thread")
    args = side_by_side.parse_args(parser, DEFAULTS, "train_step")
    if side_by_side.serve_as_worker(args, {"jax": run_jax, "torch": run_torch}):
        return

    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    if args.device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    num_params = model_config(args).num_params
    results = side_by_side.run_workers(lambda side: env)
    rows = [summarize(side, result, args, num_params) for side, result in results.items()]
    out = side_by_side.write_results(args, "train_step", shape=dict(KNOWN_MODELS[args.model].config_json),
                                     num_params=num_params, rows=rows)
    print_table(rows, args)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
