"""Decode throughput against the number of rows decoded at once: what bounds continuous batching's gain.

  python benchmarks/decode_scaling.py [--slots 8,16,32,64,128] [--out benchmarks/out/decode_scaling.json]

SmolLM2-135M-Instruct, float32, every row active for the whole run (no stop token), our sampler with one
slot per row (so no refills; the attention window grows as in training). The per-step decode time at S
rows is measured as the difference of two runs, `--short` and `--long` new tokens (prefill and the first
token cancel out), best of `--repeats` + 1 after a warm-up call that compiles.

Why it matters: continuous batching recovers the steps a static batch spends on finished rows, so its gain
over the static batch is at most

    (occupancy of the continuous run x tokens/s at its slot count) / (useful fraction of the static run x
    tokens/s at the static batch's row count),

and on a CPU, where a step's cost grows almost linearly with the rows (compute-bound), tokens/s at 32
slots is close to tokens/s at 128 rows: the gain is about occupancy / useful fraction, set by the
workload's length distribution rather than by the sampler.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def decode_seconds_per_step(model, pad_id: int, slots: int, short: int, long: int, repeats: int) -> float:
    """Seconds per decode step with `slots` rows all active, from runs of `short` and `long` new tokens."""
    from herl_jax.sampling import SamplingConfig
    from herl_jax.sampling.sampler import sample

    rng = np.random.default_rng(slots)
    prompts = [rng.integers(100, 40_000, 64).tolist() for _ in range(slots)]

    def best(new: int) -> float:
        config = SamplingConfig(n=1, max_new_tokens=new, temperature=1.0, stop_token_ids=(), prompt_bucket=64,
                                decode_slots=slots)
        sample(model, prompts, config, pad_id=pad_id)  # compiles this length's windows
        times = []
        for _ in range(1 + repeats):
            start = time.perf_counter()
            sample(model, prompts, config, pad_id=pad_id)
            times.append(time.perf_counter() - start)
        return min(times)

    return (best(long) - best(short)) / (long - short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slots", default="8,16,32,64,128")
    parser.add_argument("--short", type=int, default=32)
    parser.add_argument("--long", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/out/decode_scaling.json")
    args = parser.parse_args()

    from herl_jax.models import load_policy
    from herl_jax.sampling import pad_id_for

    model, tokenizer = load_policy("smollm2-135m-instruct")
    rows = []
    for slots in map(int, args.slots.split(",")):
        step = decode_seconds_per_step(model, pad_id_for(tokenizer), slots, args.short, args.long, args.repeats)
        rows.append(dict(slots=slots, ms_per_step=1000 * step, tok_s=slots / step))
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
