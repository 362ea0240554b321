"""The report's rows: each run's summary numbers, pooled over seeds per configuration.

Runs pool into one configuration when their config.json files differ only in `trainer.seed` and
`trainer.run_name`. A configuration's finished runs make one row (mean and 95% t interval over them,
stats.py); every run that is not finished gets a row of its own with its status and its latest numbers,
so nothing is dropped and no half-trained run moves a mean.

Per run (metrics.jsonl, step/rl_step.py's names):
- validation reward / success rate, final: the last logged `validation/reward_mean` / `validation/success_rate`;
  best: their maximum over the run;
- revision rate, gain, success: the mean over logged steps of `revision/rate`, `revision/gain` and
  `revision/success_rate` (the share of revised groups whose revision met the whole rubric); steps
  without a value skipped;
- generated tokens/s: the median over steps of `perf/sample_tokens_per_s` (the median keeps the first
  steps' compilation out);
- step time: the sum of `time/step` in minutes (RL steps only: no start-up, validation or checkpoints);
- steps done: the last logged step; plus each joined evaluation's headline number (evaluations.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

from herl_jax.reporting.runs import Run, relative
from herl_jax.reporting.stats import Estimate, estimate

POOLED_KEYS = ("trainer.seed", "trainer.run_name")
SHORT_LABELS = {"herl.alpha": "alpha", "train.loss.shaping_gamma": "gamma", "herl.variant": "variant"}
VALIDATION_REWARD, VALIDATION_SUCCESS = "validation/reward_mean", "validation/success_rate"
# column key -> heading, in table order
COLUMNS = {
    "final_reward": "final val. reward", "best_reward": "best val. reward",
    "final_success": "final val. success", "best_success": "best val. success",
    "revision_rate": "revision rate", "revision_gain": "revision gain", "revision_success": "revision success",
    "tokens_per_s": "gen. tokens/s", "step_minutes": "step time (min)", "steps_done": "steps",
}


@dataclasses.dataclass
class Row:
    """One configuration's finished runs, or one unfinished run. `params`: the config values that tell the
    configurations apart; `curve`: (step, estimate of the validation reward) where every run has a value."""

    label: str
    status: str
    runs: list[Run]
    params: dict
    metrics: dict[str, Estimate | None]
    curve: list[tuple[int, Estimate]]

    def to_json(self, folder: Path) -> dict:
        """The row for report.json in `folder` (run paths relative to it)."""
        return {"label": self.label, "status": self.status, "runs": [relative(r.path, folder) for r in self.runs],
                "seeds": [r.seed for r in self.runs], "params": self.params,
                "metrics": {k: (v.to_json() if v else None) for k, v in self.metrics.items()},
                "validation_curve": [{"step": s, **e.to_json()} for s, e in self.curve]}


def run_numbers(run: Run) -> dict[str, float]:
    """The per-run numbers of the module docstring (absent when the run has no such metric)."""
    def series(key: str) -> list[float]:
        return [float(m[key]) for m in run.metrics if _finite(m.get(key))]

    rewards, successes = series(VALIDATION_REWARD), series(VALIDATION_SUCCESS)
    numbers = {"steps_done": float(run.steps_done)}
    if rewards:
        numbers.update(final_reward=rewards[-1], best_reward=max(rewards))
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
    return Row(label, status, runs, params, metrics, _curve(runs))


def _curve(runs: list[Run]) -> list[tuple[int, Estimate]]:
    per_run = [{int(m["step"]): float(m[VALIDATION_REWARD]) for m in r.metrics if _finite(m.get(VALIDATION_REWARD))}
               for r in runs]
    common = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    return [(step, estimate([p[step] for p in per_run])) for step in common]
