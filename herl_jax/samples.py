"""Render a run's samples log for reading: `python -m herl_jax.samples WORKDIR [--step N] [--output FILE.html|.md]`.

Reads WORKDIR/samples.jsonl (the groups the trainer logged every trainer.log_samples_every steps: prompt,
rollouts, revise prompt, revision, rewards before and after the bonus, advantages) and writes them as an HTML
page or Markdown (herl_jax/training/samples_view.py; unmet rubric items highlighted), every logged step or only
step N. Without --output, prints the Markdown. A missing WORKDIR or samples file, or a step with no samples,
ends in one `error: ...` line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from herl_jax.cli_errors import UsageError, run_cli
from herl_jax.cli_flags import ArgumentParser, number
from herl_jax.errors import UserError
from herl_jax.own_files import write_file
from herl_jax.training.metrics_writer import SAMPLES_FILE
from herl_jax.training.samples_view import to_html, to_markdown

FORMATS = (".html", ".md")


class SamplesError(UserError):
    """A workdir without samples, or a step it has none of. One line."""


def parse_args(argv: list[str] | None):
    parser = ArgumentParser(prog="herl_jax.samples", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("workdir", type=Path, metavar="WORKDIR", help="a trainer --workdir")
    parser.add_argument("--step", type=number(int, 1), default=None, help="only this step (default: every step)")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE.html|FILE.md",
                        help="where to write (by its suffix); default: Markdown on stdout")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.output is not None and args.output.suffix not in FORMATS:
        raise UsageError(f"--output {args.output}: must end in {' or '.join(FORMATS)}")
    return args


def read_samples(workdir: Path, step: int | None) -> list[dict]:
    """The rows of WORKDIR/samples.jsonl (of ``step`` only, when given), in file order; a line torn by a kill
    mid-write is skipped."""
    if not workdir.is_dir():
        raise SamplesError(f"{workdir}: not a directory (give a trainer --workdir)")
    path = workdir / SAMPLES_FILE
    if not path.is_file():
        raise SamplesError(f"{path}: no samples log (the run logs samples every trainer.log_samples_every "
                           "steps, by default at each validation step; 0 turns it off)")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    if step is None:
        return rows
    chosen = [row for row in rows if row.get("step") == step]
    if not chosen:
        logged = sorted({row.get("step") for row in rows})
        raise SamplesError(f"--step {step}: {path} has no samples of that step (logged steps: {logged or 'none'})")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = read_samples(args.workdir, args.step)
    if args.output is None:
        print(to_markdown(rows), end="")
        return 0
    title = f"samples of {args.workdir}" + (f", step {args.step}" if args.step else "")
    write_file(args.output, to_html(rows, title) if args.output.suffix == ".html" else to_markdown(rows))
    print(f"wrote {len(rows)} groups to {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
