"""The report's rows: each run's summary numbers, pooled over seeds per configuration.

Runs pool into one configuration when their config.json files differ only in `trainer.seed` and
`trainer.run_name`. A configuration's finished runs make one row (mean and 95% t interval over them,
stats.py); every run that is not finished gets a row of its own with its status and its latest numbers,
so nothing is dropped and no half-trained run moves a mean.

Per run (metrics.jsonl, step/rl_step.py's names):
- validation reward / success rate, final: the last logged `validation/reward_mean` / `validation/success_rate`;
  best: their maximum over the run; validation reward area: the mean of the validation rewards over the
  run's validation points (the area under the validation curve over its span, for evenly spaced points:
  a run that learns earlier scores higher at the same final reward);
- revision rate, gain, success: the mean over logged steps of `revision/rate`, `revision/gain` and
  `revision/success_rate` (the share of revised groups whose revision met the whole rubric); steps
  without a value skipped;
- generated tokens/s: the median over steps of `perf/sample_tokens_per_s` (the median keeps the first
  steps' compilation out);
- step time: the sum of `time/step` in minutes (RL steps only: no start-up, validation or checkpoints);
- steps done: the last logged step; plus each joined evaluation's headline number (evaluations.py).

Per configuration and step, for the training-dynamics curves (the paper's Figure 5: entropy, training
reward and validation reward, plus revision rate and success): the mean and 95% t interval over the runs
that logged a finite value at that step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

from herl_jax.reporting.runs import Run, relative
from herl_jax.reporting.stats import Estimate, estimate
from herl_jax.step.validation_keys import VALIDATION_REWARD, VALIDATION_SUCCESS

POOLED_KEYS = ("trainer.seed", "trainer.run_name")
SHORT_LABELS = {"herl.alpha": "alpha", "train.loss.shaping_gamma": "gamma", "herl.variant": "variant"}
# column key -> heading, in table order
COLUMNS = {
    "final_reward": "final val. reward", "best_reward": "best val. reward", "reward_area": "val. reward area",
    "final_success": "final val. success", "best_success": "best val. success",
    "revision_rate": "revision rate", "revision_gain": "revision gain", "revision_success": "revision success",
    "tokens_per_s": "gen. tokens/s", "step_minutes": "step time (min)", "steps_done": "steps",
}
# metrics.jsonl key -> axis label of the training-dynamics curves, in panel order
CURVES = {
    "train/entropy": "policy entropy (nats/token)", "reward/mean": "training reward (rollouts)",
    VALIDATION_REWARD: "validation reward (greedy)", "revision/rate": "revision rate (share of groups)",
    "revision/success_rate": "revision success (share of revised groups)",
}


@dataclasses.dataclass
class Row:
    """One configuration's finished runs, or one unfinished run. `params`: the config values that tell the
    configurations apart; `curves`: per CURVES key, (step, estimate over the runs with a value there)."""

    label: str
    status: str
    runs: list[Run]
    params: dict
    metrics: dict[str, Estimate | None]
    curves: dict[str, list[tuple[int, Estimate]]]

    def to_json(self, folder: Path) -> dict:
        """The row for report.json in `folder` (run paths relative to it)."""
        return {"label": self.label, "status": self.status, "runs": [relative(r.path, folder) for r in self.runs],
                "seeds": [r.seed for r in self.runs], "params": self.params,
                "metrics": {k: (v.to_json() if v else None) for k, v in self.metrics.items()},
                "curves": {key: [{"step": s, **e.to_json()} for s, e in points] for key, points in self.curves.items()}}


def run_numbers(run: Run) -> dict[str, float]:
    """The per-run numbers of the module docstring (absent when the run has no such metric)."""
    def series(key: str) -> list[float]:
        return [float(m[key]) for m in run.metrics if _finite(m.get(key))]

    rewards, successes = series(VALIDATION_REWARD), series(VALIDATION_SUCCESS)
    numbers = {"steps_done": float(run.steps_done)}
    if rewards:
        numbers.update(final_reward=rewards[-1], best_reward=max(rewards), reward_area=statistics.fmean(rewards))
    if successes:
        numbers.update(final_success=successes[-1], best_success=max(successes))
    for key, name in (("revision/rate", "revision_rate"), ("revision/gain", "revision_gain"),
                      ("revision/success_rate", "revision_success")):
        if series(key):
            numbers[name] = statistics.fmean(series(key))
    if series("perf/sample_tokens_per_s"):
        numbers["tokens_per_s"] = statistics.median(series("perf/sample_tokens_per_s"))
    if series("time/step"):
        numbers["step_minutes"] = math.fsum(series("time/step")) / 60
    numbers.update({f"eval:{b}": v for b, v in run.evaluations.items()})
    return numbers


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def config_key(run: Run) -> str:
    if run.config is None:
        return f"path:{run.path}"
    return json.dumps({k: v for k, v in run.config.items() if k not in POOLED_KEYS}, sort_keys=True, default=str)


def varying_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between the runs' configurations (seed and run name aside)."""
    configs = [r.config for r in runs if r.config is not None]
    keys = sorted({k for c in configs for k in c} - set(POOLED_KEYS))
    return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def label_of(params: dict, fallback: str) -> str:
    return ", ".join(f"{SHORT_LABELS.get(k, k)}={v}" for k, v in params.items()) or fallback


def build_rows(runs: list[Run]) -> list[Row]:
    """The table's rows, configurations in the order their first run was found."""
    keys = varying_keys(runs)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(config_key(run), []).append(run)
    rows = []
    for members in groups.values():
        first = members[0]
        params = {k: first.config.get(k) for k in keys} if first.config else {}
        label = label_of(params, fallback=first.name if first.config is None else "all runs")
        finished = [r for r in members if r.status == "finished"]
        if finished:
            rows.append(_row(label, f"finished ({len(finished)} seed{'s' * (len(finished) > 1)})", finished, params))
        for run in (r for r in members if r.status != "finished"):
            total = run.steps_total if run.steps_total is not None else "?"
            rows.append(_row(f"{label} [{run.name}]", f"{run.status}, step {run.steps_done}/{total}", [run], params))
    return rows


def _row(label: str, status: str, runs: list[Run], params: dict) -> Row:
    numbers = [run_numbers(run) for run in runs]
    names = list(COLUMNS) + sorted({k for n in numbers for k in n if k.startswith("eval:")})
    metrics = {name: estimate([n[name] for n in numbers if name in n]) for name in names}
    return Row(label, status, runs, params, metrics, {key: _curve(runs, key) for key in CURVES})


def _curve(runs: list[Run], key: str) -> list[tuple[int, Estimate]]:
    """(step, estimate of `key` over the runs that logged a finite value at that step), steps in order."""
    values: dict[int, list[float]] = {}
    for run in runs:
        for m in run.metrics:
            if _finite(m.get(key)):
                values.setdefault(int(m["step"]), []).append(float(m[key]))
    return [(step, estimate(values[step])) for step in sorted(values)]
