"""Training-like sampler workloads: our continuous-batching sampler, our static-batch sampler and HF
`generate`, on SmolLM2-135M-Instruct with the bundled training prompts, in one run.

  rollout:  16 prompts x 8 samples, temperature 1, up to 256 new tokens (lengths as the model decides)
  revision: 8 prompts of ~1-2k tokens (bundled prompts strung together), 1 sample each, same settings
Useful tokens are the completions' real tokens (up to and including the stop token); tokens/s counts
only those. Occupancy: the mean fraction of decode rows doing useful work per decode step. Each side
runs the workload once, then --repeats more times; the best run counts. JAX's tracing and compile time
(as jax.monitoring reports it) is subtracted from its runs, so with --repeats 0 the single run counts.

Run through benchmarks/sampler.py --workload training (--quick: a small form for development; --workloads
revision: one workload only).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "herl_jax" / "data" / "bundled" / "if_train.jsonl"
FULL = dict(rollout=dict(prompts=16, n=8, new=256), revision=dict(prompts=8, n=1, new=256, tokens=(1000, 2000)))
QUICK = dict(rollout=dict(prompts=4, n=4, new=48), revision=dict(prompts=2, n=1, new=32, tokens=(300, 500)))


def bundled_prompts() -> list[str]:
    return [json.loads(line)["prompt"] for line in BUNDLED.read_text().splitlines() if line.strip()]


def workload_prompts(tokenizer, name: str, spec: dict) -> list[list[int]]:
    """Chat-templated prompt ids: bundled prompts as they are (rollout), or strung together into one user
    turn of a random length in spec["tokens"] (revision: a prompt that carries a long response)."""
    from herl_jax.sampling import encode_chats

    texts, rng = bundled_prompts(), np.random.default_rng(0)
    if name == "rollout":
        chosen = [texts[i] for i in rng.choice(len(texts), spec["prompts"], replace=False)]
    else:
        chosen = []
        for _ in range(spec["prompts"]):
            target, parts = int(rng.integers(*spec["tokens"])), ["Revise the response below so that it follows "
                                                                  "every instruction.\n"]
            while len(tokenizer("\n".join(parts))["input_ids"]) < target:
                parts.append(texts[int(rng.integers(len(texts)))])
            chosen.append("\n".join(parts))
    return encode_chats(tokenizer, [[{"role": "user", "content": t}] for t in chosen])


def useful_lengths(completions: np.ndarray, stop: tuple[int, ...]) -> np.ndarray:
    """Real tokens of each completion row [R, W]: through its first stop token, else all W."""
    is_stop = np.isin(completions, stop)
    return np.where(is_stop.any(axis=1), is_stop.argmax(axis=1) + 1, completions.shape[1])


COMPILE_SECONDS = [0.0]  # JAX's tracing, lowering and compile time so far


def _count_compile_time(event: str, duration: float, **_) -> None:
    if event.startswith("/jax/core/compile/"):
        COMPILE_SECONDS[0] += duration


def timed(fn, repeats: int):
    """(first call's seconds, best call's seconds net of JAX compile time, the last call's result)."""
    times = []
    for _ in range(1 + repeats):
        compiled_before, start = COMPILE_SECONDS[0], time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start, COMPILE_SECONDS[0] - compiled_before))
    return times[0][0], min(total - compiling for total, compiling in times), result


def jax_run(model, prompts, config, pad_id: int, repeats: int) -> dict:
    from herl_jax.sampling.sampler import sample

    first, best, (out, stats) = timed(lambda: sample(model, prompts, config, pad_id=pad_id), repeats)
    useful = int(out.lengths.sum())
    return dict(tok_s=useful / best, seconds=best, first_s=first, useful_tokens=useful, occupancy=stats.occupancy,
                slots=stats.slots, chunks=stats.chunks, mean_length=float(out.lengths.mean()))


def hf_run(reference, prompts, n: int, new: int, stop: tuple[int, ...], pad_id: int, repeats: int) -> dict:
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])

    def run():
        with torch.no_grad():
            return reference.generate(ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                      max_new_tokens=new, num_return_sequences=n, eos_token_id=list(stop),
                                      pad_token_id=pad_id)[:, width:].numpy()
    first, best, completions = timed(run, repeats)
    lengths = useful_lengths(completions, stop)
    steps = completions.shape[1]
    return dict(tok_s=int(lengths.sum()) / best, seconds=best, first_s=first, useful_tokens=int(lengths.sum()),
                occupancy=float(lengths.sum() / (len(lengths) * steps)), slots=len(lengths), chunks=1,
                mean_length=float(lengths.mean()))


def run_training(args) -> list[dict]:
    """Every chosen workload on every side; one row per (workload, side)."""
    specs = QUICK if args.quick else FULL
    chosen = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(specs))
    if unknown or not chosen:
        raise SystemExit(f"--workloads: expected a comma-separated subset of {', '.join(specs)}, got {args.workloads!r}")
    import jax
    import torch
    import transformers

    from herl_jax.models import load_policy
    from herl_jax.models.loading import resolve_source
    from herl_jax.sampling import SamplingConfig, pad_id_for, stop_ids_for

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    jax.monitoring.register_event_duration_secs_listener(_count_compile_time)
    model, tokenizer = load_policy("smollm2-135m-instruct")
    _, path = resolve_source("smollm2-135m-instruct")
    reference = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch.float32).eval()
    stop, pad_id = stop_ids_for(tokenizer, model), pad_id_for(tokenizer)
    rows = []
    for name, spec in ((name, specs[name]) for name in chosen):
        prompts = workload_prompts(tokenizer, name, spec)
        config = SamplingConfig(n=spec["n"], max_new_tokens=spec["new"], temperature=1.0, stop_token_ids=stop,
                                max_prompt_len=4096, prompt_bucket=args.prompt_bucket, decode_chunk=args.chunk,
                                cache_block=args.block, decode_slots=0)
        slots = min(args.slots, len(prompts) * spec["n"])
        base = dict(workload=name, prompts=len(prompts), n=spec["n"], new=spec["new"],
                    prompt_tokens=[min(len(p) for p in prompts), max(len(p) for p in prompts)])
        sides = [("jax continuous", lambda: jax_run(model, prompts, config.replace(decode_slots=slots), pad_id,
                                                     args.repeats)),
                 ("jax static", lambda: jax_run(model, prompts, config, pad_id, args.repeats)),
                 ("hf generate", lambda: hf_run(reference, prompts, spec["n"], spec["new"], stop, pad_id,
                                                args.repeats))]
        for side, run in sides:
            rows.append(dict(base, side=side, **run()))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def print_training_table(rows: list[dict]) -> None:
    print(f"{'workload':<10}{'side':<16}{'rows':>6}{'slots':>6}{'useful tok':>11}{'mean len':>9}{'tok/s':>9}"
          f"{'occupancy':>10}{'x static':>9}{'x hf':>7}")
    for r in rows:
        same = {x["side"]: x for x in rows if x["workload"] == r["workload"]}
        print(f"{r['workload']:<10}{r['side']:<16}{r['prompts'] * r['n']:>6}{r['slots']:>6}{r['useful_tokens']:>11}"
              f"{r['mean_length']:>9.1f}{r['tok_s']:>9.1f}{r['occupancy']:>10.2f}"
              f"{r['tok_s'] / same['jax static']['tok_s']:>9.2f}{r['tok_s'] / same['hf generate']['tok_s']:>7.2f}")
