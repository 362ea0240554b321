"""Command line chat with a policy: `python -m herl_jax.chat "question" [--model ...] [--n 2]`.

Prints each reply with its finish reason and token count, then the throughput. Every numeric flag is
checked before the model loads, and so is the length of each prompt (with --max-new-tokens) against the
model's context window; the sampler then takes prompts up to the longest one, so any prompt the context holds
is answered. A bad flag or model file ends in one `error: ...` line.
"""

from __future__ import annotations

import time

from tqdm import tqdm

from herl_jax.cli_errors import UsageError, run_cli
from herl_jax.cli_flags import ArgumentParser, number
from herl_jax.models import BUILTIN_MODELS, load_policy
from herl_jax.sampling import SamplingConfig
from herl_jax.sampling.chat import chat

MAX_SEED = 2**32 - 1


def parse_args(argv: list[str] | None):
    parser = ArgumentParser(prog="herl_jax.chat", description=__doc__.splitlines()[0])
    parser.add_argument("messages", nargs="+", help="one user message per conversation")
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help=f"HF directory, .gguf file or built-in name {sorted(BUILTIN_MODELS)}")
    parser.add_argument("--system", default=None, help="optional system message")
    parser.add_argument("--n", type=number(int, 1), default=1, help="replies per message, >= 1")
    parser.add_argument("--max-new-tokens", type=number(int, 1), default=128, help=">= 1")
    parser.add_argument("--temperature", type=number(float, 0), default=0.0, help=">= 0; 0 = greedy")
    parser.add_argument("--top-p", type=number(float, 0, 1, above=True), default=1.0, help="in (0, 1]; 1 = off")
    parser.add_argument("--top-k", type=number(int, 0), default=0, help=">= 0; 0 = off")
    parser.add_argument("--seed", type=number(int, 0, MAX_SEED), default=0, help=f"0 .. {MAX_SEED}")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    system = [{"role": "system", "content": args.system}] if args.system else []
    conversations = [system + [{"role": "user", "content": m}] for m in args.messages]
    longest = check_context(args, conversations)  # before the weights load
    config = sampling_config(args, len(conversations), longest)
    check_memory(args, config, len(conversations))
    model, tokenizer = load_policy(args.model, dtype=args.dtype)
    start = time.perf_counter()
    # On a terminal, a bar over the replies (thousands of them can take hours); absent in pipes and logs.
    with tqdm(total=len(conversations) * args.n, unit="reply", desc="sampling", disable=None, leave=False) as bar:
        replies, output = chat(model, tokenizer, conversations, config, progress=lambda done: bar.update(done - bar.n))
    seconds = time.perf_counter() - start
    for i, (message, texts) in enumerate(zip(args.messages, replies)):
        print(f"\n>>> {message}")
        for j, text in enumerate(texts):
            row = i * args.n + j
            print(f"--- reply {j + 1} ({output.finish_reasons[row]}, {output.lengths[row]} tokens)\n{text}")
    print(f"\n{int(output.lengths.sum())} tokens in {seconds:.1f} s (first call includes compilation)")


def check_context(args, conversations) -> int:
    """The longest prompt's length in tokens; refuses (UsageError) a conversation whose prompt plus
    --max-new-tokens exceeds the model's context."""
    from herl_jax.models import load_tokenizer
    from herl_jax.sampling import encode_chats
    from herl_jax.models.loading import model_config_of

    cfg, where = model_config_of(args.model)
    prompts = encode_chats(load_tokenizer(args.model), conversations)
    for i, ids in enumerate(prompts):
        if len(ids) + args.max_new_tokens > cfg.max_position_embeddings:
            raise UsageError(f"message {i + 1} is {len(ids)} tokens; with --max-new-tokens={args.max_new_tokens} "
                             f"it exceeds the model's context window of {cfg.max_position_embeddings} tokens "
                             f"(max_position_embeddings in {where})")
    return max(len(ids) for ids in prompts)


def sampling_config(args, prompts: int, longest: int) -> SamplingConfig:
    """The one sampler call's settings. Its sizes fit its rows, since no other call will reuse its programs:
    at most one decode slot per reply (an idle slot costs what a busy one does on a CPU; the default 64
    would decode one reply in 16) and the prompt count padded to a power of two, not four."""
    return SamplingConfig(n=args.n, max_new_tokens=args.max_new_tokens, max_prompt_len=longest,
                          temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, seed=args.seed,
                          decode_slots=min(SamplingConfig.decode_slots, prompts * args.n), prompt_count_base=2)


def check_memory(args, config: SamplingConfig, prompts: int) -> None:
    """Refuses (UsageError) a call whose memory plan (herl_jax.memory_plan.plan_sampling) cannot fit this
    machine: the weights, the prompts' and the decode slots' caches, the replies' host arrays."""
    from herl_jax.buckets import round_up
    from herl_jax.memory_plan import SamplerCall, plan_sampling
    from herl_jax.models.loading import model_config_of
    from herl_jax.training.preflight import Machine, memory_shortfall

    cfg, _ = model_config_of(args.model, dtype=args.dtype, param_dtype=args.dtype)
    call = SamplerCall("chat", prompts, config.n, round_up(config.max_prompt_len, config.prompt_bucket),
                       config.max_new_tokens, config.decode_slots, prompt_count_base=config.prompt_count_base)
    shortfall = memory_shortfall(plan_sampling(cfg, call), call,
                                 {"sampling": "--n, the number of messages or --max-new-tokens"}, Machine.here())
    if shortfall:
        raise UsageError(shortfall)


if __name__ == "__main__":
    run_cli(main)
