"""Our sampler against transformers `generate` on the same model, batch, prompt length and output length.

  CPU:  python benchmarks/sampler.py                      (SmolLM2-135M-Instruct, batch 1 and 8, 64 + 128)
  Training-like workloads (continuous vs static batching vs HF, varying lengths; see sampler_training.py):
        python benchmarks/sampler.py --workload training [--quick]
  GPU:  python benchmarks/sampler.py --device gpu         (random-weight Qwen2.5-0.5B / 7B shapes, bf16,
                                                           batch 8 and 64, 256 + 256, HF also static+compile)
Both sides sample at temperature 1 with top-p / top-k off and never stop early, so they emit exactly
batch x new tokens. Each side runs once to compile / warm up, then `--repeats` timed runs (best kept).
Prints a table last and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

def peak_host_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_time(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, best of `repeats` later calls)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, min(times)


def jax_side(source, dtype: str, batch: int, prompt_len: int, new: int, repeats: int, slots: int = 0):
    import jax
    from flax import nnx

    from herl_jax.models import Decoder, ModelConfig, load_model
    from herl_jax.sampling import SamplingConfig, generate

    if isinstance(source, ModelConfig):  # a known model's shape, random weights
        model = Decoder(source.replace(dtype=dtype, param_dtype=dtype), nnx.Rngs(0))
    else:
        model = load_model(source, dtype=dtype)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(100, model.cfg.vocab_size - 100, prompt_len).tolist() for _ in range(batch)]
    config = SamplingConfig(max_new_tokens=new, temperature=1.0, prompt_bucket=prompt_len, decode_slots=slots)

    def run():
        out = generate(model, prompts, config)
        assert out.lengths.min() == new
    first, best = best_time(run, repeats)
    peak = None
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        peak = stats["peak_bytes_in_use"] / 2**20
    del model
    return first, best, peak


def torch_side(source, dtype: str, batch: int, prompt_len: int, new: int, repeats: int,
               device: str, static: bool):
    import torch
    import transformers

    from herl_jax.models import ModelConfig
    from herl_jax.models.loading import resolve_source

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    if isinstance(source, ModelConfig):  # a known model's shape, random weights
        hf = source.to_hf_dict()
        config = transformers.AutoConfig.for_model(hf.pop("model_type"), **hf)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    else:
        _, path = resolve_source(source)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch_dtype)
    model = model.to(device).eval()
    vocab = model.config.vocab_size
    ids = torch.randint(100, vocab - 100, (batch, prompt_len), device=device)
    kwargs = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new, min_new_tokens=new,
                  attention_mask=torch.ones_like(ids), pad_token_id=0)
    if static:
        kwargs["cache_implementation"] = "static"
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def run():
        with torch.no_grad():
            out = model.generate(ids, **kwargs)
        if device == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] == prompt_len + new
    first, best = best_time(run, repeats)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return first, best, peak


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes")
    parser.add_argument("--models", default=None,
                        help="comma-separated: smollm2-135m-instruct, qwen2.5-0.5b, ... (tiny: a 2-layer shape)")
    parser.add_argument("--no-static", action="store_true", help="GPU: skip HF static cache + torch.compile")
    parser.add_argument("--out", default="benchmarks/out/sampler.json")
    parser.add_argument("--workload", choices=["fixed", "training"], default="fixed",
                        help="fixed: every row emits exactly `new` tokens; training: rollouts and revisions")
    parser.add_argument("--quick", action="store_true", help="training: a small form, for development")
    parser.add_argument("--workloads", default="rollout,revision",
                        help="training: comma-separated workloads to run (rollout, revision)")
    parser.add_argument("--slots", type=int, default=32, help="decode slots of the continuous sampler")
    parser.add_argument("--chunk", type=int, default=16, help="decode steps per chunk between refills")
    parser.add_argument("--block", type=int, default=64, help="cache block of the attention window")
    parser.add_argument("--prompt-bucket", type=int, default=64)
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--prompt-len", type=int, help="fixed: prompt tokens (default: the device's)")
    parser.add_argument("--new-tokens", type=int, help="fixed: new tokens per row (default: the device's)")
    return parser.parse_args()


def write_json(args, rows: list[dict]) -> Path:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = dict(device=args.device, platform=sys.platform, cpus=os.cpu_count())
    out.write_text(json.dumps(dict(machine=machine, rows=rows), indent=2))
    return out


def run_fixed(args) -> list[dict]:
    """Every row emits exactly `new` tokens: the continuous sampler, the static one, HF (and HF static on GPU)."""
    from herl_jax.models.shapes import KNOWN_MODELS, known_model_config

    if args.device == "cpu":
        models = (args.models or "smollm2-135m-instruct").split(",")
        batches = [int(b) for b in (args.batches or "1,8").split(",")]
        prompt_len, new, dtype, torch_device = 64, 128, "float32", "cpu"
    else:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # torch shares the GPU
        models = (args.models or "qwen2.5-0.5b,qwen2.5-7b").split(",")
        batches = [int(b) for b in (args.batches or "8,64").split(",")]
        prompt_len, new, dtype, torch_device = 256, 256, "bfloat16", "cuda"
    prompt_len, new = args.prompt_len or prompt_len, args.new_tokens or new

    rows = []
    for name in models:
        source = (known_model_config(name) if name in KNOWN_MODELS  # else "tiny" or a checkpoint
                  else known_model_config("smollm2-135m").replace(num_layers=2, hidden_size=64, intermediate_size=128,
                                                                  num_heads=4, num_kv_heads=2, head_dim=16,
                                                                  vocab_size=512) if name == "tiny" else name)
        for batch in batches:
            tokens = batch * new
            row = dict(model=name, batch=batch, prompt=prompt_len, new=new, dtype=dtype)
            # The sampler as the trainer runs it (one slot per row here, windowed attention), then static.
            first, best, peak = jax_side(source, dtype, batch, prompt_len, new, args.repeats, slots=batch)
            row.update(jax_tok_s=tokens / best, jax_first_s=first, jax_peak_mib=peak)
            row["jax_static_tok_s"] = tokens / jax_side(source, dtype, batch, prompt_len, new, args.repeats)[1]
            first, best, peak = torch_side(source, dtype, batch, prompt_len, new, args.repeats, torch_device, False)
            row.update(hf_tok_s=tokens / best, hf_first_s=first, hf_peak_mib=peak)
            if args.device == "gpu" and not args.no_static:
                first, best, peak = torch_side(source, dtype, batch, prompt_len, new, args.repeats,
                                               torch_device, True)
                row.update(hf_static_tok_s=tokens / best, hf_static_first_s=first, hf_static_peak_mib=peak)
            row["host_peak_mib"] = peak_host_mib()
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    return rows


def print_fixed_table(rows: list[dict]) -> None:
    header = f"{'model':<22}{'batch':>6}{'jax tok/s':>11}{'jax static':>11}{'hf tok/s':>10}{'ratio':>7}"
    if any("hf_static_tok_s" in r for r in rows):
        header += f"{'hf static':>11}{'ratio':>7}"
    print(header + f"{'jax 1st call s':>15}{'peak MiB':>10}")
    for r in rows:
        line = f"{r['model']:<22}{r['batch']:>6}{r['jax_tok_s']:>11.1f}{r['jax_static_tok_s']:>11.1f}"
        line += f"{r['hf_tok_s']:>10.1f}"
        line += f"{r['jax_tok_s'] / r['hf_tok_s']:>7.2f}"
        if "hf_static_tok_s" in r:
            line += f"{r['hf_static_tok_s']:>11.1f}{r['jax_tok_s'] / r['hf_static_tok_s']:>7.2f}"
        peak = r["jax_peak_mib"] if r["jax_peak_mib"] is not None else r["host_peak_mib"]
        print(line + f"{r['jax_first_s']:>15.1f}{peak:>10.0f}")


def main() -> None:
    args = parse_args()
    if args.workload == "training":
        from sampler_training import print_training_table, run_training

        rows = run_training(args)
        out = write_json(args, rows)
        print_training_table(rows)
    else:
        rows = run_fixed(args)
        out = write_json(args, rows)
        print_fixed_table(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
