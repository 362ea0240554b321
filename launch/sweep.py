"""Sweep trainer config values over a grid: locally one run after another, or as a SLURM job array.

  python launch/sweep.py --config configs/paper.py:qwen2.5-7b,herl,if --root runs/sweep1 \
      --grid herl.alpha=0,0.05,0.1 --grid train.loss.shaping_gamma=0.1,1 \
      [--mode local|slurm] [--dry-run] [-- extra trainer flags]

Every grid point is one run with its own workdir ROOT/NAME and TensorBoard run name NAME, where NAME
spells the point's values (e.g. alpha=0.05_gamma=1), so `tensorboard --logdir ROOT` shows them together.
Every point is loaded and validated exactly as the trainer will see it before anything is launched.
A run is finished when its workdir holds the file FINISHED (written by the trainer at its last step);
finished runs are skipped, so rerunning a sweep resumes it. A run that stopped as failed (its workdir holds
FAILED, herl_jax/training/run_outcome.py) is shown as failed and skipped too, unless `--retry_failed` is among
the trainer flags after `--`. See launch/README.md.

No value reaches a shell: a value with a control character (a newline, a tab, ...) is refused, every #SBATCH
value is one plain word, and a SLURM array task execs its run's argv from ROOT/manifest.json (array_task.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shlex
import signal
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from herl_jax.step.validation_keys import VALIDATION_REWARD
from herl_jax.training.run_outcome import FINISHED, failure_of

RETRY_FAILED = "--retry_failed"  # the trainer flag that resumes a failed run; the sweep then runs it too
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED = "interrupted (saved; rerun to continue)"  # a stopped sweep whose current run saved exits 0
RUN_NAME_KEY = "trainer.run_name"
MULTIHOST = Path(__file__).resolve().with_name("multihost.py")
ARRAY_TASK = MULTIHOST.with_name("array_task.py")
# Short labels for run names; any other key is labelled by its last component.
LABELS = {"herl.alpha": "alpha", "train.loss.shaping_gamma": "gamma"}
# Sweep-owned trainer flags that may not appear after `--`.
RESERVED_FLAGS = ("--config", "--workdir", f"--config.{RUN_NAME_KEY}")
# A config override, --config.KEY=VALUE (or --noconfig.KEY for a boolean); group 1 is KEY.
CONFIG_FLAG = re.compile(r"^--?(?:no)?config\.([^=]+)")
# What an #SBATCH line may hold: SLURM ends a value at whitespace, reads quotes and a backslash, and ends the
# line's options at '#'.
SBATCH_WORD = re.compile(r"[^\s'\"\\#]+")


class SweepError(ValueError):
    """A bad grid, a bad trainer flag or a grid point the trainer would reject."""


def refuse_control(what: str, text: str) -> None:
    """Raises SweepError when `text` holds a control character or a line or paragraph separator."""
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        raise SweepError(f"{what} {text!r}: control characters (a newline, a tab, ...) are not allowed")


@dataclass(frozen=True)
class Run:
    """One grid point: its name, workdir and the trainer command line that trains it."""

    name: str
    workdir: Path
    argv: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return (self.workdir / FINISHED).exists()

    @property
    def failed(self) -> str | None:
        """How the run failed ("step N: REASON"), when it stopped as failed; None otherwise."""
        failure = failure_of(self.workdir)
        return None if failure is None else f"step {failure.step}: {failure.reason}"

    @property
    def skipped_as(self) -> str | None:
        """Why the sweep does not launch this run ("finished", "failed ..."), or None when it does."""
        if self.finished:
            return "finished"
        if self.failed and RETRY_FAILED not in self.argv:
            return f"failed ({self.failed}; add `-- {RETRY_FAILED}` to retry it)"
        return None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


# ------------------------------------------------------------------------------------------ the grid
def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """["herl.alpha=0,0.1", ...] -> {"herl.alpha": ["0", "0.1"], ...} (keys in the order given)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        refuse_control("--grid", spec)
        key, sep, values = spec.partition("=")
        key = key.strip().removeprefix("config.")
        items = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(items):
            raise SweepError(f"--grid {spec!r}: expected KEY=VALUE[,VALUE...], e.g. herl.alpha=0,0.05")
        if key in grid:
            raise SweepError(f"--grid {key} is given twice")
        grid[key] = items
    return grid


def expand(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the last key varying fastest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def labels(keys: list[str]) -> dict[str, str]:
    """Key -> its label in run names: LABELS, else the last component, else the full key if that clashes."""
    short = {key: LABELS.get(key, key.rsplit(".", 1)[-1]) for key in keys}
    clashing = {label for label in short.values() if list(short.values()).count(label) > 1}
    return {key: key if label in clashing else label for key, label in short.items()}


def run_name(point: dict[str, str], key_labels: dict[str, str]) -> str:
    """{"herl.alpha": "0.05", "train.loss.shaping_gamma": "1"} -> "alpha=0.05_gamma=1" (filesystem-safe)."""
    name = "_".join(f"{key_labels[key]}={value}" for key, value in point.items())
    return re.sub(r"[^A-Za-z0-9._=+-]", "-", name)


def overrides(point: dict[str, str]) -> list[str]:
    """{"herl.alpha": "0.05"} -> ["--config.herl.alpha=0.05"]."""
    return [f"--config.{key}={value}" for key, value in point.items()]


# ------------------------------------------------------------------------------------------ validation
def load_config(config_spec: str, flags_: list[str]):
    """The ConfigDict the trainer builds from `--config=config_spec` and the `--config.*` flags in `flags_`,
    parsed by the same ml_collections machinery (so values get the config's types)."""
    from absl import flags
    from ml_collections import config_flags

    from herl_jax.cli_errors import UsageError
    from herl_jax.cli_flags import parse_flags

    argv = ["trainer", f"--config={config_spec}", *flags_]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "training config", flag_values=flag_values, sys_argv=argv)
    try:
        parse_flags(argv, flag_values)  # list keys take a,b; an unreadable config file is refused here
    except UsageError as e:
        raise SweepError(str(e)) from None
    return flag_values.config


def check_keys(config, keys: list[str]) -> None:
    """Raises SweepError naming every key that the config does not have."""
    unknown = [key for key in keys if not _has_key(config, key)]
    if unknown:
        raise SweepError(f"unknown config keys: {unknown}")


def _has_key(config, key: str) -> bool:
    node = config
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            return False
        node = node[part]
    return True


def validate_point(config_spec: str, flags_: list[str], name: str) -> None:
    """Loads one grid point's config and runs herl_jax.config.validate on it, as the trainer would."""
    from herl_jax.config import ConfigError, validate

    try:
        validate(load_config(config_spec, flags_))
    except (SweepError, ConfigError) as e:
        raise SweepError(f"grid point {name}: {e}") from None


def config_keys(flags_: list[str]) -> list[str]:
    """The config keys that the config overrides among `flags_` set."""
    return [m.group(1) for flag in flags_ if (m := CONFIG_FLAG.match(flag))]


# ------------------------------------------------------------------------------------------ planning
def plan(config_spec: str, root: Path, grid: dict[str, list[str]], extra: list[str],
         trainer_cmd: list[str]) -> list[Run]:
    """One validated Run per grid point; raises SweepError before anything is launched."""
    for what, texts in (("--config", [config_spec]), ("--root", [str(root)]), ("--trainer-cmd", trainer_cmd),
                        ("trainer flag", extra)):
        for text in texts:
            refuse_control(what, text)
    reserved = [flag for flag in extra if flag.split("=", 1)[0] in RESERVED_FLAGS]
    if reserved:
        raise SweepError(f"the sweep sets these itself, remove them after `--`: {reserved}")
    clashing = sorted(set(config_keys(extra)) & set(grid))
    if clashing:
        raise SweepError(f"keys both swept and set after `--`: {clashing}")
    check_keys(load_config(config_spec, []), [*grid, *config_keys(extra)])

    extra_overrides = [flag for flag in extra if CONFIG_FLAG.match(flag)]  # other flags go to the trainer only
    key_labels = labels(list(grid))
    runs = []
    for point in expand(grid):
        name = run_name(point, key_labels)
        own = [*overrides(point), f"--config.{RUN_NAME_KEY}={name}"]
        validate_point(config_spec, [*extra_overrides, *own], name)
        workdir = root / name
        runs.append(Run(name, workdir, (*trainer_cmd, f"--config={config_spec}", f"--workdir={workdir}", *extra, *own)))
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        raise SweepError(f"grid values give clashing run names: {names}")
    return runs


# ------------------------------------------------------------------------------------------ local mode
@dataclass
class Result:
    """How one run of a local sweep went."""

    run: Run
    status: str
    seconds: float = 0.0


def run_local(runs: list[Run]) -> list[Result]:
    """Runs every unfinished run (not failed, or retried), one after another; Ctrl-C or SIGTERM lets the current
    run save, then stops."""
    results = []
    for i, run in enumerate(runs):
        if run.skipped_as:
            results.append(Result(run, "skipped (finished)" if run.finished else run.skipped_as))
            continue
        print(f"\n[{i + 1}/{len(runs)}] {run.name}\n{run.command}", flush=True)
        start = time.monotonic()
        returncode, interrupted = _run_to_end(run.argv)
        results.append(Result(run, _status(run, returncode, interrupted), time.monotonic() - start))
        if interrupted:
            results += [Result(later, "not started") for later in runs[i + 1:]]
            break
    return results


def _run_to_end(argv: tuple[str, ...]) -> tuple[int, bool]:
    """(return code, whether a stop signal came). SIGINT or SIGTERM, to the sweep or to its whole process group,
    once or more, is passed on to the trainer, which saves its step and exits: the sweep waits for it."""
    process = subprocess.Popen(argv)
    signals = []

    def pass_on(signum, frame):
        signals.append(signum)
        if process.poll() is None:
            process.send_signal(signum)  # the trainer handles a repeated stop signal like the first

    previous = {s: signal.signal(s, pass_on) for s in STOP_SIGNALS}
    try:
        return process.wait(), bool(signals)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _status(run: Run, returncode: int, interrupted: bool) -> str:
    if run.finished:
        return "finished"
    if interrupted:
        return INTERRUPTED if returncode == 0 else f"interrupted (exit {returncode})"
    if returncode:
        return f"failed (exit {returncode}; {run.failed})" if run.failed else f"failed (exit {returncode})"
    return "stopped early (no FINISHED marker)"


def summary_table(results: list[Result]) -> str:
    """A plain-text table: run, status, minutes, and the last logged step and rewards of each run."""
    header = ("run", "status", "minutes", "step", "reward/mean", VALIDATION_REWARD)
    rows = [header]
    for r in results:
        metrics = last_metrics(r.run.workdir)
        rows.append((r.run.name, r.status, f"{r.seconds / 60:.1f}", _fmt(metrics.get("step")),
                     _fmt(metrics.get("reward/mean")), _fmt(metrics.get(VALIDATION_REWARD))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def last_metrics(workdir: Path) -> dict:
    """The newest value of each metric in WORKDIR/metrics.jsonl ({} when there is none)."""
    merged: dict = {}
    path = workdir / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                merged.update(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill
                pass
    return merged


def _fmt(value) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


# ------------------------------------------------------------------------------------------ SLURM mode
def array_spec(indices: list[int], max_parallel: int | None) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (with "%N" for at most N tasks at once)."""
    ranges = []
    for _, group in itertools.groupby(enumerate(indices), key=lambda pair: pair[1] - pair[0]):
        members = [index for _, index in group]
        ranges.append(str(members[0]) if len(members) == 1 else f"{members[0]}-{members[-1]}")
    return ",".join(ranges) + (f"%{max_parallel}" if max_parallel else "")


def check_sbatch_values(args: argparse.Namespace) -> None:
    """Raises SweepError unless every value the script's #SBATCH lines take from the command line is one plain
    word (SLURM would cut or misread it, and a newline would end its directives)."""
    values = [("--job-name", args.job_name), ("--time", args.time), ("--root", str(args.root.resolve())),
              *([("--partition", args.partition)] if args.partition else []),
              *(("--sbatch-option", option) for option in args.sbatch_option)]
    for what, value in values:
        refuse_control(what, value)
        if not SBATCH_WORD.fullmatch(value):
            raise SweepError(f"{what} {value!r}: an #SBATCH value cannot be empty or hold whitespace, quotes, "
                             "a backslash or '#'")
    for option in args.sbatch_option:
        if not option.startswith("-"):
            raise SweepError(f"--sbatch-option {option!r}: expected an sbatch option, e.g. --account=myproj")


def slurm_script(args: argparse.Namespace, array: str, manifest: Path, logs: Path, repo: Path) -> str:
    """The job-array script: task i execs entry i of the manifest under srun, with no shell in between."""
    # More than one node is one jax.distributed run per grid point: one process per GPU (see multihost.py).
    tasks_per_node = args.gpus_per_node if args.nodes > 1 else 1
    directives = [
        f"--job-name={args.job_name}", f"--array={array}", f"--nodes={args.nodes}",
        f"--ntasks-per-node={tasks_per_node}", f"--gpus-per-node={args.gpus_per_node}", f"--time={args.time}",
        f"--output={logs}/%A_%a.out",
        *([f"--partition={args.partition}"] if args.partition else []),
        *([f"--cpus-per-task={args.cpus_per_task}"] if args.cpus_per_task else []),
        *args.sbatch_option,
    ]
    return "\n".join([
        "#!/bin/bash",
        *(f"#SBATCH {d}" for d in directives),
        "# Written by launch/sweep.py: one array task per grid point; task i execs the argv of entry i of the",
        "# manifest (launch/array_task.py), which no shell reads.",
        "set -euo pipefail",
        f"cd {shlex.quote(str(repo))}",
        'echo "array task $SLURM_ARRAY_TASK_ID on $(hostname)"',
        f'srun {shlex.join([sys.executable, str(ARRAY_TASK), str(manifest)])} "$SLURM_ARRAY_TASK_ID"',
        "",
    ])


def write_slurm(args: argparse.Namespace, runs: list[Run]) -> Path | None:
    """Writes ROOT/manifest.json (every run's name, workdir and argv; entry i = array task i) and
    ROOT/sweep.sbatch for the runs to launch (Run.skipped_as); returns the script's path, or None when there is
    none."""
    pending = [i for i, run in enumerate(runs) if not run.skipped_as]
    if not pending:
        return None
    root = args.root.resolve()
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    manifest = root / "manifest.json"
    entries = [{"name": run.name, "workdir": str(run.workdir), "argv": list(run.argv)} for run in runs]
    manifest.write_text(json.dumps(entries, indent=1) + "\n")
    script = root / "sweep.sbatch"
    script.write_text(slurm_script(args, array_spec(pending, args.max_parallel), manifest, logs, Path.cwd()))
    return script


# ------------------------------------------------------------------------------------------ command line
def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own arguments, and the trainer flags after `--`."""
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    from herl_jax.cli_flags import ArgumentParser  # its errors are one line (herl_jax.cli_errors)

    parser = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--config", required=True, help="trainer config, FILE.py[:ARG] as for herl_jax.train")
    parser.add_argument("--root", required=True, type=Path, help="sweep directory; run NAME trains in ROOT/NAME")
    parser.add_argument("--grid", required=True, action="append", metavar="KEY=V1,V2,...",
                        help="config key (e.g. herl.alpha) and its values; repeat for more keys")
    parser.add_argument("--mode", choices=("local", "slurm"), default="local",
                        help="local: train the runs here, one after another; slurm: write a job-array script")
    parser.add_argument("--dry-run", action="store_true", help="validate, print the commands, launch nothing")
    parser.add_argument("--trainer-cmd", type=shlex.split,
                        help="command that trains one run (default: this Python -m herl_jax.train, or "
                             "launch/multihost.py when --nodes > 1)")
    slurm = parser.add_argument_group("SLURM mode")
    slurm.add_argument("--nodes", type=int, default=1, help="nodes per run (> 1: a jax.distributed run)")
    slurm.add_argument("--gpus-per-node", type=int, default=1)
    slurm.add_argument("--time", default="24:00:00", help="time limit per run")
    slurm.add_argument("--partition")
    slurm.add_argument("--cpus-per-task", type=int)
    slurm.add_argument("--max-parallel", type=int, help="at most this many runs at once")
    slurm.add_argument("--job-name", default="herl-sweep")
    slurm.add_argument("--sbatch-option", action="append", default=[], metavar="OPTION",
                       help="any other #SBATCH line, e.g. --sbatch-option=--account=myproj (repeatable)")
    args = parser.parse_args(own)
    if args.trainer_cmd is None:
        entry = [str(MULTIHOST)] if args.nodes > 1 else ["-m", "herl_jax.train"]
        args.trainer_cmd = [sys.executable, *entry]
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.mode == "slurm":
            check_sbatch_values(args)
        runs = plan(args.config, args.root, parse_grid(args.grid), extra, args.trainer_cmd)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finished, failed = sum(run.finished for run in runs), sum(bool(run.failed) for run in runs)
    print(f"{len(runs)} runs validated ({finished} already finished, {failed} failed) under {args.root}")

    if args.dry_run:
        for run in runs:
            print((f"# {run.skipped_as}, skipped: " if run.skipped_as else "") + run.command)
        return 0
    if args.mode == "slurm":
        script = write_slurm(args, runs)
        if script is None:
            print("every run is finished or failed: nothing to submit")
        else:
            print(f"wrote {script} and {script.with_name('manifest.json')}\nsubmit with:  sbatch {script}")
        return 0

    results = run_local(runs)
    print("\n" + summary_table(results))
    print(f"\ntensorboard --logdir {args.root}")
    return 0 if all(r.status.startswith(("finished", "skipped", INTERRUPTED, "not started")) for r in results) else 1


if __name__ == "__main__":
    from herl_jax.cli_errors import run_cli

    run_cli(main)
