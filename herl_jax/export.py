"""Any checkpointed step of a training run as a Hugging Face model directory (transformers loads it).

  python -m herl_jax.export WORKDIR --step N|latest|best --output DIR

best: the checkpointed step with the highest validation reward in WORKDIR/metrics.jsonl. Writes DIR as the
trainer writes WORKDIR/export: config.json, safetensors weights, the tokenizer files, and herl_export.json
(the run and step). Only the parameters are read, on the CPU; a checkpoint whose files fail their checksums
is refused. DIR must not exist or be empty; a bad workdir, step or output is one `error:` line, before any
weights load.
"""

from __future__ import annotations

import sys
from pathlib import Path


def parse_args(argv: list[str]):
    from herl_jax.cli_flags import ArgumentParser

    parser = ArgumentParser(prog="herl_jax.export", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("workdir", type=Path, help="the run's --workdir")
    parser.add_argument("--step", required=True, metavar="N|latest|best", help="which checkpoint")
    parser.add_argument("--output", required=True, type=Path, help="a new (or empty) folder for the export")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from herl_jax.cli_errors import UsageError
    from herl_jax.own_files import refuse_link
    from herl_jax.training.run_policy import find_checkpoint

    args = parse_args(sys.argv[1:] if argv is None else argv)
    checkpoint = find_checkpoint(args.workdir, args.step)
    refuse_link(args.output)
    if args.output.exists() and (not args.output.is_dir() or any(args.output.iterdir())):
        raise UsageError(f"--output {args.output} exists and is not an empty folder; name a new one")

    import jax

    from herl_jax.training.run_policy import load_checkpoint_policy, write_export

    model, tokenizer = load_checkpoint_policy(checkpoint, device=jax.devices("cpu")[0])
    write_export(model, tokenizer, args.output, {"workdir": str(checkpoint.workdir), "step": checkpoint.step})
    print(f"exported step {checkpoint.step} of {checkpoint.workdir} to {args.output}")
    return 0


if __name__ == "__main__":
    from herl_jax.cli_errors import run_cli

    run_cli(main)
