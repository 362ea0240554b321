"""Report over training runs: a table pooled over seeds, learning curves and α × γ heatmaps.

  python -m herl_jax.report PATH... --output DIR [--eval RESULTS_JSON ...] [--baseline BASELINE_JSON]
                           [--reference KEY=VALUE[,KEY=VALUE...]]

PATH: a run directory (a trainer --workdir) or a folder of them (a launch/sweep.py root, or several).
Writes DIR/report.md, DIR/report.json, DIR/learning_curves.png and, for sweeps over herl.alpha and/or
train.loss.shaping_gamma, DIR/heatmap*.png. --eval adds a herl_jax.evaluate results.json whose checkpoints
lie inside runs (RUN/eval/results.json is read without it); --baseline adds the base model's validation
score from `python -m herl_jax.reporting.baseline`; --reference (e.g. variant=rlvr) adds every configuration's
difference from that one, paired by seed, with its 95% interval (reporting/compare.py). The rules (pooling,
status, each number) are in herl_jax/reporting/ and printed under the table.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from herl_jax.cli_flags import ArgumentParser
    from herl_jax.reporting.write import write_report

    parser = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="run directories or sweep roots")
    parser.add_argument("--output", required=True, type=Path, help="folder for report.md, report.json, PNGs")
    parser.add_argument("--eval", action="append", default=[], type=Path, metavar="RESULTS_JSON",
                        help="a herl_jax.evaluate results.json to join (repeatable)")
    parser.add_argument("--baseline", type=Path, help="baseline.json of python -m herl_jax.reporting.baseline")
    parser.add_argument("--reference", metavar="KEY=VALUE[,...]",
                        help="compare every configuration with this one, paired by seed (e.g. variant=rlvr)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    report = write_report(args.paths, args.output, args.eval, args.baseline, args.reference)
    print((args.output / "report.md").read_text())
    print(f"wrote {args.output / 'report.md'}, report.json and {', '.join(report['figures']) or 'no plots'}")
    return 0


if __name__ == "__main__":
    from herl_jax.cli_errors import run_cli

    run_cli(main)
