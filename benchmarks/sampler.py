"""Our sampler against transformers `generate` on the same model, batch, prompt length and output length.

  CPU:  python benchmarks/sampler.py                      (SmolLM2-135M-Instruct, batch 1 and 8, 64 + 128)
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

QWEN25_SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}


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


def jax_side(source: str | dict, dtype: str, batch: int, prompt_len: int, new: int, repeats: int):
    import jax
    from flax import nnx

    from herl_jax.models import Decoder, ModelConfig, load_model
    from herl_jax.sampling import SamplingConfig, generate

    if isinstance(source, dict):
        cfg = ModelConfig.from_hf_dict({"architectures": ["Qwen2ForCausalLM"], **source, "rope_theta": 1e6},
                                       dtype=dtype, param_dtype=dtype)
        model = Decoder(cfg, nnx.Rngs(0))
    else:
        model = load_model(source, dtype=dtype)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(100, model.cfg.vocab_size - 100, prompt_len).tolist() for _ in range(batch)]
    config = SamplingConfig(max_new_tokens=new, temperature=1.0, prompt_bucket=prompt_len)

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


def torch_side(source: str | dict, dtype: str, batch: int, prompt_len: int, new: int, repeats: int,
               device: str, static: bool):
    import torch
    import transformers

    from herl_jax.models.loading import resolve_source

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    if isinstance(source, dict):
        config = transformers.Qwen2Config(**source, rope_theta=1e6)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes")
    parser.add_argument("--models", default=None, help="comma-separated: smollm2-135m-instruct, qwen2.5-0.5b, ...")
    parser.add_argument("--no-static", action="store_true", help="GPU: skip HF static cache + torch.compile")
    parser.add_argument("--out", default="benchmarks/out/sampler.json")
    args = parser.parse_args()

    if args.device == "cpu":
        models = (args.models or "smollm2-135m-instruct").split(",")
        batches = [int(b) for b in (args.batches or "1,8").split(",")]
        prompt_len, new, dtype, torch_device = 64, 128, "float32", "cpu"
    else:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # torch shares the GPU
        models = (args.models or "qwen2.5-0.5b,qwen2.5-7b").split(",")
        batches = [int(b) for b in (args.batches or "8,64").split(",")]
        prompt_len, new, dtype, torch_device = 256, 256, "bfloat16", "cuda"

    rows = []
    for name in models:
        source = QWEN25_SHAPES.get(name, name)
        for batch in batches:
            tokens = batch * new
            row = dict(model=name, batch=batch, prompt=prompt_len, new=new, dtype=dtype)
            first, best, peak = jax_side(source, dtype, batch, prompt_len, new, args.repeats)
            row.update(jax_tok_s=tokens / best, jax_first_s=first, jax_peak_mib=peak)
            first, best, peak = torch_side(source, dtype, batch, prompt_len, new, args.repeats, torch_device, False)
            row.update(hf_tok_s=tokens / best, hf_first_s=first, hf_peak_mib=peak)
            if args.device == "gpu" and not args.no_static:
                first, best, peak = torch_side(source, dtype, batch, prompt_len, new, args.repeats,
                                               torch_device, True)
                row.update(hf_static_tok_s=tokens / best, hf_static_first_s=first, hf_static_peak_mib=peak)
            row["host_peak_mib"] = peak_host_mib()
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = dict(device=args.device, platform=sys.platform, cpus=os.cpu_count())
    out.write_text(json.dumps(dict(machine=machine, rows=rows), indent=2))

    header = f"{'model':<22}{'batch':>6}{'jax tok/s':>11}{'hf tok/s':>10}{'ratio':>7}"
    if any("hf_static_tok_s" in r for r in rows):
        header += f"{'hf static':>11}{'ratio':>7}"
    print(header + f"{'jax 1st call s':>15}{'peak MiB':>10}")
    for r in rows:
        line = f"{r['model']:<22}{r['batch']:>6}{r['jax_tok_s']:>11.1f}{r['hf_tok_s']:>10.1f}"
        line += f"{r['jax_tok_s'] / r['hf_tok_s']:>7.2f}"
        if "hf_static_tok_s" in r:
            line += f"{r['hf_static_tok_s']:>11.1f}{r['jax_tok_s'] / r['hf_static_tok_s']:>7.2f}"
        peak = r["jax_peak_mib"] if r["jax_peak_mib"] is not None else r["host_peak_mib"]
        print(line + f"{r['jax_first_s']:>15.1f}{peak:>10.0f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
