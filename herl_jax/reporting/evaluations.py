"""Joining `herl_jax.evaluate` results to runs.

An evaluation output folder holds results.json: label -> {"label", "source", "benchmarks": {name:
{"pass@1": {...}, ...}}} (herl_jax/evaluation/report.py), `source` being the evaluated checkpoint's absolute
path or a built-in model name. The report reads RUN/eval/results.json of every run, and every results.json
given with --eval. An entry joins the run whose directory holds its source (e.g. RUN/export); in
RUN/eval/results.json an entry whose source is no path at all (a built-in name) stays apart. Entries that join
no run (the base model, say) are listed in a table of their own.

The headline number of a benchmark is the one of the paper's Table 1: IFEval / IFBench prompt-level strict
accuracy, HealthBench score, WritingBench mean criterion score (and for `heldout`, the user's own held-out
prompts, prompt-level strict accuracy: the share of prompts with every constraint met).
"""

from __future__ import annotations

import json
from pathlib import Path

from herl_jax.cli_errors import UsageError
from herl_jax.reporting.runs import Run

EVAL_DIR = "eval"
HEADLINE = {"ifeval": "prompt_strict", "ifbench": "prompt_strict", "heldout": "prompt_strict", "healthbench": "score",
            "writingbench": "score"}


def headlines(summary: dict) -> dict[str, float]:
    """benchmark -> its headline Pass@1 number, for the benchmarks of one checkpoint's summary that have one."""
    out = {}
    for benchmark, result in summary.get("benchmarks", {}).items():
        value = result.get("pass@1", {}).get(HEADLINE.get(benchmark, "score"))
        if isinstance(value, (int, float)):
            out[benchmark] = float(value)
    return out


def load_results(path: Path) -> dict[str, dict]:
    """label -> summary of one results.json; a file that is not one raises UsageError naming it."""
    try:
        results = json.loads(path.read_text())
        if not all(isinstance(s, dict) and "benchmarks" in s for s in results.values()):
            raise ValueError
    except (ValueError, AttributeError):
        raise UsageError(f"{path}: not a herl_jax.evaluate results.json (label -> summary)") from None
    return results


def _owner(source: str, runs: list[Run]) -> Run | None:
    path = Path(source)
    if not path.is_absolute():
        return None
    return next((run for run in runs if path == run.path or run.path in path.parents), None)


def join(runs: list[Run], extra_files: list[Path]) -> dict[tuple[str, Path], dict[str, float]]:
    """Fills each run's `evaluations`; returns the entries joined to no run: (label, results.json) -> headlines."""
    files = [run.path / EVAL_DIR / "results.json" for run in runs] + list(extra_files)
    unjoined: dict[tuple[str, Path], dict[str, float]] = {}
    for path in dict.fromkeys(files):
        if not path.exists():
            if path in extra_files:
                raise FileNotFoundError(f"--eval {path}: no such file")
            continue
        for label, summary in load_results(path).items():
            owner = _owner(str(summary.get("source", "")), runs)
            if owner is None:
                unjoined[label, path] = headlines(summary)
            else:
                owner.evaluations.update(headlines(summary))
    return unjoined
