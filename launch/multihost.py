"""One training run across several processes / hosts: jax.distributed, then herl_jax.train.

Under SLURM (started by srun; see launch/multihost.sbatch) everything is detected:
  srun python launch/multihost.py --config configs/paper.py:qwen2.5-7b,herl,if --workdir runs/q7

Anywhere else, run one copy per process with an explicit coordinator (process 0's host and a free port):
  python launch/multihost.py --coordinator-address host0:1234 --num-processes 2 --process-id 0 \
      --config configs/demo.py --workdir runs/mh      # and --process-id 1 on the second host

Every argument this script does not define goes to the trainer unchanged. The joining itself is
`herl_jax.parallel.initialize_distributed` (jax.distributed reads SLURM's variables); it runs before any other JAX
call. The trainer then builds one mesh over every process's devices (config.parallel), shards the
parameters and optimizer state over it, gives each process its own slice of every batch to score and
revise (trainer.prompts_per_step must be a multiple of the process count), and writes metrics, run
records and the export from process 0.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's jax.distributed arguments, and the rest (the trainer's flags)."""
    from herl_jax.cli_flags import ArgumentParser, number  # errors in one line (herl_jax.cli_errors)

    parser = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--coordinator-address", help="HOST:PORT of process 0 (default: detected, e.g. SLURM)")
    parser.add_argument("--num-processes", type=number(int, 1), help="processes in the run (default: detected)")
    parser.add_argument("--process-id", type=number(int, 0), help="this process's index, 0 .. num-processes - 1")
    parser.add_argument("--local-device-ids", type=lambda s: [int(i) for i in s.split(",")],
                        help="devices this process drives, e.g. 0,1,2,3 (default: under SLURM with one task "
                             "per GPU the GPU at SLURM_LOCALID, else every local device)")
    args, trainer_argv = parser.parse_known_args(argv)
    explicit = (args.coordinator_address, args.num_processes, args.process_id)
    if any(v is not None for v in explicit) and any(v is None for v in explicit):
        parser.error("give --coordinator-address, --num-processes and --process-id together (or none: detect)")
    if args.process_id is not None and args.process_id >= args.num_processes:
        parser.error(f"--process-id={args.process_id}: must be < --num-processes={args.num_processes}")
    return args, trainer_argv


def main(argv: list[str] | None = None) -> None:
    args, trainer_argv = parse_args(sys.argv[1:] if argv is None else argv)
    from herl_jax.parallel import initialize_distributed

    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id, args.local_device_ids)
    import jax

    print(f"jax.distributed: process {jax.process_index()} of {jax.process_count()}, "
          f"{jax.local_device_count()} local / {jax.device_count()} global devices", file=sys.stderr, flush=True)

    from herl_jax import train

    sys.argv = [sys.argv[0], *trainer_argv]  # ml_collections reads --config.* overrides from sys.argv
    train.cli()


if __name__ == "__main__":
    from herl_jax.cli_errors import run_cli

    run_cli(main)
