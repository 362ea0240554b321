"""Forward pass of SmolLM2-135M-Instruct: our jitted decoder against transformers, same batch, one run.

  python benchmarks/forward.py [--batch 8] [--seq 256] [--repeats 3]

Both run float32 on the CPU over the same random token batch (full attention mask). Reports the compile
time of our jitted forward, the best time of `--repeats` calls for each side, tokens/s and the ratio.
Prints a table last and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/out/forward.json")
    args = parser.parse_args()

    import jax
    import torch
    import transformers

    from herl_jax.models import load_model
    from herl_jax.models.loading import resolve_source

    model = load_model("smollm2-135m-instruct")
    ids = np.random.default_rng(0).integers(100, model.cfg.vocab_size - 100, (args.batch, args.seq)).astype(np.int32)
    mask = np.ones_like(ids)
    forward = jax.jit(lambda m, i, a: m(i, a))
    start = time.perf_counter()
    forward.lower(model, ids, mask).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(forward(model, ids, mask))
    jax_s = timed(lambda: jax.block_until_ready(forward(model, ids, mask)), args.repeats)

    _, path = resolve_source("smollm2-135m-instruct")
    reference = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch.float32).eval()
    ids_t, mask_t = torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask.astype(np.int64))
    with torch.no_grad():
        reference(ids_t, attention_mask=mask_t)
        torch_s = timed(lambda: reference(ids_t, attention_mask=mask_t), args.repeats)

    tokens = args.batch * args.seq
    row = dict(batch=args.batch, seq=args.seq, jax_compile_s=compile_s, jax_s=jax_s, torch_s=torch_s,
               jax_tok_s=tokens / jax_s, torch_tok_s=tokens / torch_s, ratio=torch_s / jax_s,
               torch_threads=torch.get_num_threads(), cpus=os.cpu_count())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2))
    print(f"{'batch x seq':<14}{'jax s':>9}{'torch s':>9}{'jax/torch speed':>17}{'jax compile s':>15}")
    print(f"{args.batch} x {args.seq:<8}{jax_s:>9.3f}{torch_s:>9.3f}{row['ratio']:>17.2f}{compile_s:>15.1f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
