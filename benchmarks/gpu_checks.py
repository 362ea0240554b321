"""The checks benchmarks/gpu.sh runs around the side-by-side benchmarks, and its report.

  python benchmarks/gpu_checks.py greedy  OUT.json [--dry-run]  our greedy rows == HF greedy (SmolLM2; dry: tiny)
  python benchmarks/gpu_checks.py bf16    OUT.json [--dry-run]  a bf16-compute train step vs the fp32 one
  python benchmarks/gpu_checks.py memory  OUT.json [--dry-run]  the decode chunk's compiled memory analysis
  python benchmarks/gpu_checks.py report  DIR                   DIR/*.json -> DIR/gpu.json and DIR/gpu.md
Each check writes {"name", "passed", ...figures} and exits 1 when it fails. Imports stay inside the
checks: the GPU machine may lack optional packages.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_LLAMA = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False)


def greedy(dry_run: bool) -> dict:
    """Our greedy completions (continuous batching, 3 slots) against HF greedy generate, row by row."""
    import numpy as np
    import torch
    import transformers

    from herl_jax.models import load_model, load_policy
    from herl_jax.models.loading import resolve_source
    from herl_jax.sampling import SamplingConfig, encode_chats, generate, stop_ids_for

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if dry_run:
        directory = tempfile.mkdtemp()
        torch.manual_seed(0)
        transformers.LlamaForCausalLM(transformers.LlamaConfig(**TINY_LLAMA)).save_pretrained(directory)
        model, stop, pad = load_model(directory), (3,), 0
        reference = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
        rng = np.random.default_rng(0)
        prompts = [rng.integers(4, 128, int(rng.integers(3, 20))).tolist() for _ in range(5)]
    else:
        model, tokenizer = load_policy("smollm2-135m-instruct")
        _, path = resolve_source("smollm2-135m-instruct")
        reference = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                      dtype=torch.float32)
        questions = ["What is the capital of Japan?", "List three red fruits.", "Why is the sea salty?", "Hi!",
                     "Write a haiku about rain."]
        prompts = encode_chats(tokenizer, [[{"role": "user", "content": q}] for q in questions])
        stop, pad = stop_ids_for(tokenizer, model), tokenizer.pad_token_id or 0
    reference = reference.to(device).eval()
    new = 16 if dry_run else 48
    out = generate(model, prompts, SamplingConfig(temperature=0, max_new_tokens=new, stop_token_ids=stop,
                                                  decode_slots=3, decode_chunk=8, cache_block=16))
    equal = 0
    for row, prompt in enumerate(prompts):
        with torch.no_grad():
            ids = torch.tensor([prompt], device=device)
            expected = reference.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new,
                                          eos_token_id=list(stop), pad_token_id=pad)[0, len(prompt):].tolist()
        equal += out.completion(row) == expected
    return dict(name="greedy equals HF generate", passed=equal == len(prompts), rows=len(prompts), equal_rows=equal,
                torch_device=device)


def bf16_step(dry_run: bool) -> dict:
    """One optimizer step from the same weights and batch with fp32 and with bf16 compute, through the
    trainer's bucketed micro-batches (trainer.sequence_bucket's default): the token log-probs and the
    gradient norm agree within bf16 tolerance (the first step's loss does not depend on the dtype: its
    ratios are exactly 1)."""
    import types

    import numpy as np

    from flax import nnx

    from benchmarks.train_step import make_batch
    from herl_jax.models import Decoder, ModelConfig
    from herl_jax.models.shapes import known_model_config
    from herl_jax.learner import Learner, LearnerConfig, LossConfig, OptimConfig, PPOConfig, make_optimizer
    from herl_jax.training.run_config import TrainerSection

    cfg = (ModelConfig.from_hf_dict(dict(TINY_LLAMA, architectures=["LlamaForCausalLM"])) if dry_run
           else known_model_config("qwen2.5-0.5b"))
    shape = types.SimpleNamespace(batch=4, seq=64 if dry_run else 512)
    batch = make_batch(shape, cfg.vocab_size)
    bucket = TrainerSection.sequence_bucket
    figures, logprobs = {}, {}
    for dtype in ("float32", "bfloat16"):
        model = Decoder(cfg.replace(dtype=dtype, param_dtype="float32"), nnx.Rngs(0))
        learner = Learner(model, make_optimizer(OptimConfig()),
                          LearnerConfig.of(LossConfig(), PPOConfig(micro_batch_size=2), temperature=1.0))
        state = learner.init_state(model)
        old = learner.compute_logprobs(state.params, batch, bucket)
        logprobs[dtype] = np.asarray(old)[np.asarray(batch["loss_mask"], bool)]
        _, metrics = learner.optimizer_step(state, batch, old, old, bucket_size=bucket)
        figures[dtype] = dict(loss=float(metrics["loss"]), grad_norm=float(metrics["grad_norm"]))
    logprob_error = float(np.abs(logprobs["bfloat16"] - logprobs["float32"]).mean())
    f32, b16 = figures["float32"], figures["bfloat16"]
    norm_error = abs(b16["grad_norm"] - f32["grad_norm"]) / f32["grad_norm"]
    return dict(name="bf16 train step vs fp32", passed=logprob_error < 0.05 and norm_error < 0.05,
                logprob_mean_abs_error=logprob_error, grad_norm_rel_error=norm_error,
                grad_norm_fp32=f32["grad_norm"], grad_norm_bf16=b16["grad_norm"], loss_fp32=f32["loss"],
                loss_bf16=b16["loss"])


def memory(dry_run: bool) -> dict:
    """The decode chunk's compiled memory: the donated slots (KV cache, completions) alias its outputs,
    so the cache is held once."""
    import jax
    import numpy as np
    from flax import nnx

    from herl_jax import parallel
    from herl_jax.models import Decoder, ModelConfig
    from herl_jax.models.shapes import known_model_config
    from herl_jax.sampling import slots as slot_programs

    cfg = (ModelConfig.from_hf_dict(dict(TINY_LLAMA, architectures=["LlamaForCausalLM"])) if dry_run
           else known_model_config("qwen2.5-0.5b").replace(dtype="bfloat16", param_dtype="bfloat16"))
    num_slots, prompt, new = (4, 16, 16) if dry_run else (64, 256, 256)
    graphdef, state = nnx.split(Decoder(cfg, nnx.Rngs(0)))
    rules = parallel.DEFAULT_RULES
    weights = slot_programs.decode_weights(state, mesh=None, rules=rules)
    slots = slot_programs.empty_slots(cfg=cfg, num_slots=num_slots, cache_len=prompt + new, max_new=new,
                                      pad_id=0, mesh=None, rules=rules)
    settings = slot_programs.DrawSettings(1.0, 0, 1.0, (), new)
    compiled = slot_programs.decode_chunk.trace(graphdef, state, weights, slots, jax.random.key(0), np.int32(1),
                                                settings=settings, steps=16, window=prompt + new, mesh=None, rules=rules
                                                ).lower().compile()
    stats = compiled.memory_analysis()
    cache_bytes = sum(x.nbytes for x in jax.tree.leaves(slots.cache))
    slot_bytes = sum(x.nbytes for x in jax.tree.leaves(slots))
    figures = {k: getattr(stats, f"{k}_size_in_bytes") / 2**20 for k in ("argument", "output", "alias", "temp")}
    return dict(name="decode chunk memory (MiB)", passed=stats.alias_size_in_bytes >= slot_bytes,
                kv_cache=cache_bytes / 2**20, slots=slot_bytes / 2**20, **figures,
                shape=f"{cfg.num_layers} layers, {num_slots} slots x {prompt + new} cache slots, {cfg.dtype}")


def report(directory: Path) -> None:
    """Merges the checks' and benchmarks' JSON files into gpu.json and a markdown table, gpu.md."""
    parts = {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json")) if p.stem != "gpu"}
    (directory / "gpu.json").write_text(json.dumps(parts, indent=2))
    lines = ["| part | result |", "|---|---|"]
    for name, part in parts.items():
        if "passed" in part:
            figures = ", ".join(f"{k}={_short(v)}" for k, v in part.items() if k not in ("name", "passed"))
            lines.append(f"| {part['name']} | {'PASS' if part['passed'] else 'FAIL'}: {figures} |")
        else:
            for row in part.get("rows", [part]):
                figures = ", ".join(f"{k}={_short(v)}" for k, v in row.items() if not isinstance(v, (dict, list)))
                lines.append(f"| {name} | {figures} |")
    (directory / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["greedy", "bf16", "memory", "report"])
    parser.add_argument("path", type=Path, help="where the check writes its JSON (report: the output dir)")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes, for CPU")
    args = parser.parse_args()
    if args.check == "report":
        report(args.path)
        return
    result = {"greedy": greedy, "bf16": bf16_step, "memory": memory}[args.check](args.dry_run)
    args.path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
