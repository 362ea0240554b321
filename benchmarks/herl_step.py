"""The full HeRL step, ours (JAX) against the PyTorch baseline, on the same model shape, prompts, N and lengths.

  CPU:  python benchmarks/herl_step.py                 (SmolLM2-135M-Instruct, real weights, fp32,
                                                       2 prompts x N = 4, 32 new tokens)
  GPU:  python benchmarks/herl_step.py --device gpu    (random-weight Qwen2.5-0.5B shape, fp32 master
                                                       params + bf16 compute, 16 prompts x N = 4, 256 new)
        python benchmarks/herl_step.py --device gpu --model qwen2.5-7b --num-layers 8 --micro-batch 4
                                                      (the 7B shape's width and vocabulary with 8 of its
                                                       28 layers, 3.0B params: fp32 master weights, AdamW
                                                       state, gradients and a bf16 sampling copy take
                                                       ~20 bytes/param on either side, 150 GB for all 28)
A step is the trainer's own ``RLStep`` (herl_jax/step/rl_step.py), timed as it is: sample N per prompt -> score with the bundled data's programmatic
rubrics -> revise each group's best rollout -> score -> assemble groups -> old log-probs -> one PPO
mini-batch update (AdamW), from configs/demo.py with the sizes above. Both sides run the very same host
code (``rl_step.Collector`` with its ``sampler``); only the device work differs:
  JAX:     ``RLStep`` itself: our jitted sampler and ``update_policy`` (``Learner``);
  PyTorch: baselines/torch/herl_step.py -- transformers ``generate`` (on GPU with a static
           cache, which transformers compiles with torch.compile; ``--no-static`` for the dynamic cache),
           the torch HeRL loss, AdamW (fused on GPU), bf16 autocast on GPU.
Equal work: stop ids are dropped so every completion has exactly ``--new-tokens`` tokens, and the success
threshold is set above any reward so every group revises one rollout (``herl.max_candidates = 1``).
Training rows still differ a little in length (the revise prompt quotes a sampled draft), so throughputs
are per token. On GPU the two sides have independent random weights of the same shape; the text is
the SmolLM2 tokenizer's, with sampled ids past its vocabulary folded back into it (id mod 49152) for
decoding and scoring only -- the trained ids are the sampled ones.

Each framework runs in its own subprocess (its own peak memory; JAX does not preallocate beside torch):
one warm-up step (compiles), then ``--steps`` timed steps, all on the same prompts with fresh seeds (so
the timed steps reuse the warm-up's compiled shapes). Reported per framework, medians over the timed
steps: rollout and revision tok/s (completion tokens / sampling seconds), train tok/s (real tokens of
the batch / update seconds, old log-probs included), MFU = 6 x params x train tok/s / peak FLOP/s (GPU;
``--peak-tflops`` default 808, the bf16 matmul rate measured on the H100 and listed in benchmarks/README.md;
the dense spec sheet says 989), peak memory (GPU: device peak; CPU: the worker's peak RSS) and the full step
time. Prints a table last and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import sys
from pathlib import Path

import jax
import numpy as np
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make herl_jax and baselines importable

from baselines.torch.shared_step import GenerateTimer, step_metrics  # noqa: E402
from benchmarks import side_by_side  # noqa: E402

from herl_jax.config import validate  # noqa: E402
from herl_jax.data import load_dataset  # noqa: E402
from herl_jax.models import Decoder, ModelConfig, load_model, load_tokenizer  # noqa: E402
from herl_jax.models.gguf_reader import GGUFCheckpoint  # noqa: E402
from herl_jax.models.loading import resolve_source  # noqa: E402
from herl_jax.models.shapes import KNOWN_MODELS, known_model_config  # noqa: E402
from herl_jax.rubrics import RubricScorer  # noqa: E402
from herl_jax.sampling import generate  # noqa: E402
from herl_jax.sampling import pad_id_for  # noqa: E402
from herl_jax.learner import Learner, make_optimizer  # noqa: E402
from herl_jax.step.rl_step import Collector, RLStep, StepSettings, frozen_copy  # noqa: E402

BUILTIN = "smollm2-135m-instruct"
DEFAULTS = {
    "cpu": dict(model=BUILTIN, prompts=2, n=4, new_tokens=32, micro_batch=5, dtype="float32", steps=2,
                peak_tflops=None),
    "gpu": dict(model="qwen2.5-0.5b", prompts=16, n=4, new_tokens=256, micro_batch=8, dtype="bfloat16", steps=3,
                peak_tflops=808.0),
}


# ------------------------------------------------------------------------------------------ shared setup
def herl_config(args):
    """configs/demo.py with the benchmark's sizes, typed (RunConfig); every group revises one rollout."""
    spec = importlib.util.spec_from_file_location("herl_demo_config", ROOT / "configs" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.model.dtype = args.dtype
    # As many decode slots as the call has rows (the PyTorch side's batch): on a CPU idle slots cost as much as
    # busy ones, and the default 64 decodes in no fewer than 16.
    c.rollout.update(n=args.n, max_new_tokens=args.new_tokens, decode_slots=args.prompts * args.n)
    c.revision.update(max_new_tokens=args.new_tokens, max_prompt_len=2048, prompt_bucket=256,
                      decode_slots=args.prompts)
    c.herl.update(max_candidates=1, success_threshold=2.0)  # above any reward: always revise
    c.train.ppo.update(mini_batch_size=args.prompts * (args.n + 1), micro_batch_size=args.micro_batch)
    c.trainer.update(prompts_per_step=args.prompts, score_overlap_chunks=1)
    return validate(c)


def model_config(args):
    """Our ModelConfig of the benchmarked model (fp32 parameters, ``--dtype`` compute)."""
    runtime = dict(dtype=args.dtype, param_dtype="float32")
    if args.model == BUILTIN:
        return ModelConfig.from_hf_dict(GGUFCheckpoint(resolve_source(BUILTIN)[1]).hf_config(), **runtime)
    cfg = known_model_config(args.model, **runtime)
    return cfg.replace(num_layers=args.num_layers) if args.num_layers else cfg


class FoldedTokenizer:
    """A tokenizer for a model with a larger vocabulary: ids past its own are folded back into it (id mod
    its size) when decoding; everything else is the wrapped tokenizer's."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._size = len(tokenizer)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def decode(self, ids, **kwargs) -> str:
        return self._tokenizer.decode([int(i) % self._size for i in ids], **kwargs)


def tokenizer_for(args):
    tokenizer = load_tokenizer(BUILTIN)
    return tokenizer if args.model == BUILTIN else FoldedTokenizer(tokenizer)


def run_steps(step, run, args) -> tuple[dict, list[dict]]:
    """One warm-up step, then ``args.steps`` timed ones. Every step takes the same prompts (step i draws with
    step i's seeds), so the warm-up compiles the shapes the timed steps run."""
    examples = next(load_dataset(run.data).train_batches(run.trainer.prompts_per_step))
    metrics = [step(examples, i) for i in range(1 + args.steps)]
    return metrics[0], metrics[1:]


def peak_host_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------ JAX
class TimedRLStep:
    """The trainer's ``RLStep`` as it is, its sampler wrapped in a ``GenerateTimer`` (fresh each step)."""

    def __init__(self, model, tokenizer, scorer, run, pad_id: int):
        learner = Learner(model, make_optimizer(run.optim), run.learner)
        self.state = learner.init_state(model)
        ref_params = frozen_copy(self.state.params) if run.learner.loss.kl_coef > 0 else None
        self.settings = StepSettings.from_run(run)
        self.rl_step = RLStep(self.settings, learner, Collector(self.settings, tokenizer, scorer, pad_id), ref_params)

    def __call__(self, examples, step: int) -> dict:
        timer = GenerateTimer(generate, fixed_lengths=True)
        self.rl_step.collector.sampler = timer
        self.state, metrics, _ = self.rl_step(self.state, examples, step)
        jax.block_until_ready(self.state)
        return step_metrics(timer, metrics)


def run_jax(args) -> dict:
    run, tokenizer = herl_config(args), tokenizer_for(args)
    if args.model == BUILTIN:
        model = load_model(BUILTIN, dtype=args.dtype, param_dtype="float32")
    else:
        model = Decoder(model_config(args), nnx.Rngs(0))
    with RubricScorer(run.scorer) as scorer:
        step = TimedRLStep(model, tokenizer, scorer, run, pad_id=pad_id_for(tokenizer))
        del model  # the state holds the parameters
        warmup, timed = run_steps(step, run, args)
    stats = jax.devices()[0].memory_stats() or {}
    return dict(warmup=warmup, steps=timed, device=jax.devices()[0].device_kind, version=f"jax {jax.__version__}",
                peak_device_mib=stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None,
                peak_host_mib=peak_host_mib())


# -------------------------------------------------------------------------------------------- PyTorch
def run_torch(args) -> dict:
    import torch
    import transformers

    from baselines.torch.herl_step import TorchHeRLStep

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    on_gpu = args.device == "gpu"
    device = torch.device("cuda" if on_gpu else "cpu")
    run, model_cfg, tokenizer = herl_config(args), model_config(args), tokenizer_for(args)
    if args.model == BUILTIN:
        path = resolve_source(BUILTIN)[1]
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch.float32).to(device)
    else:
        hf = model_cfg.to_hf_dict()
        config = transformers.AutoConfig.for_model(hf.pop("model_type"), **hf)
        torch.manual_seed(0)
        with device:
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                                  attn_implementation="sdpa")
    with RubricScorer(run.scorer) as scorer:
        step = TorchHeRLStep(model, model_cfg, tokenizer, scorer, run, pad_id=pad_id_for(tokenizer),
                             autocast_dtype=torch.bfloat16 if args.dtype == "bfloat16" else None,
                             static_cache=on_gpu and not args.no_static, fixed_lengths=True)
        warmup, timed = run_steps(step.step, run, args)
    return dict(warmup=warmup, steps=timed,
                device=torch.cuda.get_device_name() if on_gpu else platform.processor() or "cpu",
                version=f"torch {torch.__version__}, transformers {transformers.__version__}",
                threads=None if on_gpu else torch.get_num_threads(),
                peak_device_mib=torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
                peak_host_mib=peak_host_mib())


# -------------------------------------------------------------------------------------------- report
def summarize(name: str, result: dict, num_params: int, peak_tflops: float | None) -> dict:
    """Medians over the timed steps of each throughput and time, and the MFU of the train throughput."""
    def median(fn) -> float:
        return float(np.median([fn(s) for s in result["steps"]]))

    train_tok_s = median(lambda s: s["train_tokens"] / s["update_seconds"])
    return dict(
        framework=name,
        rollout_tok_s=median(lambda s: s["rollout_tokens"] / s["rollout_seconds"]),
        revision_tok_s=median(lambda s: s["revision_tokens"] / s["revision_seconds"]),
        train_tok_s=train_tok_s,
        mfu=6 * num_params * train_tok_s / (peak_tflops * 1e12) if peak_tflops else None,
        step_s=median(lambda s: s["step_seconds"]),
        score_s=median(lambda s: s["score_seconds"]),
        warmup_step_s=result["warmup"]["step_seconds"],
        peak_mib=result["peak_device_mib"] if result["peak_device_mib"] is not None else result["peak_host_mib"],
        **result,
    )


TABLE = [  # (label, key, format, ratio: "up" = JAX / PyTorch, "down" = PyTorch / JAX, None = none)
    ("rollout tok/s", "rollout_tok_s", ".1f", "up"),
    ("revision tok/s", "revision_tok_s", ".1f", "up"),
    ("train tok/s", "train_tok_s", ".1f", "up"),
    ("MFU", "mfu", ".1%", None),
    ("full step s", "step_s", ".2f", "down"),
    ("  of which scoring s", "score_s", ".2f", None),
    ("warm-up step s", "warmup_step_s", ".1f", "down"),
    ("peak memory MiB", "peak_mib", ".0f", "up"),
]


def print_table(rows: list[dict], args, num_params: int) -> None:
    jax_row, torch_row = rows

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    memory = "device peak" if args.device == "gpu" else "worker peak RSS"
    static = " (static cache)" if args.device == "gpu" and not args.no_static else ""
    print(f"\nfull HeRL step, {args.model}{f' ({args.num_layers} layers)' if args.num_layers else ''}, "
          f"{num_params / 1e6:.0f}M params, {args.prompts} prompts x N={args.n} + 1 revision each, "
          f"{args.new_tokens} new tokens, {args.dtype}, {args.device}: JAX on {jax_row['device']}, "
          f"PyTorch{static} on {torch_row['device']}; {args.steps} timed step(s) after 1 warm-up")
    print(f"{'':<22}{'JAX':>12}{'PyTorch':>12}{'ratio':>9}")
    for label, key, spec, ratio in TABLE:
        a, b = jax_row[key], torch_row[key]
        r = "-" if ratio is None or a is None or b is None else f"{(a / b if ratio == 'up' else b / a):.2f}x"
        print(f"{label:<22}{fmt(a, spec):>12}{fmt(b, spec):>12}{r:>9}")
    print(f"ratio: JAX / PyTorch for throughputs and memory ({memory}), PyTorch / JAX for times "
          f"(> 1: JAX faster)" + (f"; MFU against {args.peak_tflops:g} TFLOP/s" if args.peak_tflops else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--model", choices=[BUILTIN, *KNOWN_MODELS])
    parser.add_argument("--num-layers", type=int, help="keep only this many layers of a --model shape")
    parser.add_argument("--prompts", type=int, help="prompts per step")
    parser.add_argument("--n", type=int, help="rollouts per prompt (N)")
    parser.add_argument("--new-tokens", type=int, help="tokens per rollout and per revision (forced)")
    parser.add_argument("--micro-batch", type=int, help="rows per forward/backward of the update")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="compute dtype (params stay fp32)")
    parser.add_argument("--steps", type=int, help="timed steps after the warm-up step")
    parser.add_argument("--peak-tflops", type=float, help="peak FLOP/s of the device, for MFU")
    parser.add_argument("--no-static", action="store_true", help="GPU: PyTorch generates with the dynamic cache")
    parser.add_argument("--torch-threads", type=int, help="torch CPU threads (default: torch's)")
    args = side_by_side.parse_args(parser, DEFAULTS, "herl_step")
    if args.n < 2:
        parser.error("--n must be >= 2 (a group needs two rollouts)")
    if args.num_layers and args.model == BUILTIN:
        parser.error("--num-layers applies to the random-weight shapes only")

    if side_by_side.serve_as_worker(args, {"jax": run_jax, "torch": run_torch}):
        return

    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", TOKENIZERS_PARALLELISM="false")
    # The PyTorch worker imports herl_jax for the host logic only: keep JAX off the GPU there.
    cpu_jax = dict(env, JAX_PLATFORMS="cpu")
    num_params = model_config(args).num_params
    results = side_by_side.run_workers(lambda side: cpu_jax if side == "torch" or args.device == "cpu" else env)
    rows = [summarize(side, result, num_params, args.peak_tflops) for side, result in results.items()]
    out = side_by_side.write_results(args, "herl_step", num_params=num_params, rows=rows)
    print_table(rows, args, num_params)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
