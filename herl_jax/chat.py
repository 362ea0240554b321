"""Command line chat with a policy: `python -m herl_jax.chat "question" [--model ...] [--n 2]`.

Prints each reply with its finish reason and token count, then the throughput.
"""

from __future__ import annotations

import argparse
import time

from herl_jax.models import BUILTIN_MODELS, load_policy
from herl_jax.sampling import SamplingConfig, chat


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages", nargs="+", help="one user message per conversation")
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help=f"HF directory, .gguf file or built-in name {sorted(BUILTIN_MODELS)}")
    parser.add_argument("--system", default=None, help="optional system message")
    parser.add_argument("--n", type=int, default=1, help="replies per message")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args(argv)

    model, tokenizer = load_policy(args.model, dtype=args.dtype)
    system = [{"role": "system", "content": args.system}] if args.system else []
    conversations = [system + [{"role": "user", "content": m}] for m in args.messages]
    config = SamplingConfig(n=args.n, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                            top_p=args.top_p, top_k=args.top_k, seed=args.seed)
    start = time.perf_counter()
    replies, output = chat(model, tokenizer, conversations, config)
    seconds = time.perf_counter() - start
    for i, (message, texts) in enumerate(zip(args.messages, replies)):
        print(f"\n>>> {message}")
        for j, text in enumerate(texts):
            row = i * args.n + j
            print(f"--- reply {j + 1} ({output.finish_reasons[row]}, {output.lengths[row]} tokens)\n{text}")
    print(f"\n{int(output.lengths.sum())} tokens in {seconds:.1f} s (first call includes compilation)")


if __name__ == "__main__":
    main()
