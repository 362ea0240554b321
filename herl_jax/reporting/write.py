"""The report's files: report.md (the table, the plots, the rules), report.json (the same numbers), PNGs."""

from __future__ import annotations

import json
import math
from pathlib import Path

from herl_jax.cli_errors import UsageError
from herl_jax.reporting import compare, evaluations, plots, runs, table
from herl_jax.reporting.stats import Estimate

RULES = """\
Rows: runs whose config.json differ only in `trainer.seed` / `trainer.run_name` pool into one configuration;
its finished runs make one row (mean ± half-width of the 95% Student t interval over seeds; one seed: no
interval), and every run that is not finished has a row of its own with its latest numbers. Status: finished
(FINISHED file), running (herl.lock held by a live process), failed (a FAILED file, or a Traceback / ERROR in
train.log),
unfinished (stopped before its last step; rerunning resumes it), not started. Final / best: the last / the
highest validation point (greedy replies to the validation prompts); val. reward area: the mean over the
validation points (the area under the validation curve per step of its span); revision rate, gain (best revision's
reward − best rollout's) and success (share of revised groups whose revision met the whole rubric): means
over steps; gen. tokens/s: median over steps of generated tokens per second of sampling; step time: the sum of
the RL steps' times. `eval:B`: herl_jax.evaluate's headline Pass@1 on benchmark B for the run's checkpoint.
(n=k): only k of the row's runs have this number (a metric added later, an evaluation not yet run)."""


def write_report(paths: list[Path], output: Path, eval_files: list[Path] = (), baseline: Path | None = None,
                 reference: str | None = None) -> dict:
    """Writes report.md, report.json and the plots into `output`; returns report.json's content. `reference`:
    compare.py's KEY=VALUE naming the configuration every other one is compared with, paired by seed. Paths
    in the report are relative to `output`, so it reads the same on any machine and moves with its runs."""
    found = runs.find_runs(paths)
    if not found:
        raise FileNotFoundError(f"no run directories under {', '.join(map(str, paths))}")
    unjoined = {f"{label} ({runs.relative(path, output)})": numbers
                for (label, path), numbers in evaluations.join(found, list(eval_files)).items()}
    rows = table.build_rows(found)
    base = _read_baseline(baseline) if baseline else None
    against = compare.find_reference(rows, reference) if reference else None
    output.mkdir(parents=True, exist_ok=True)
    figures = [plots.learning_curves(rows, output / "learning_curves.png", base),
               plots.training_dynamics(rows, output / "training_dynamics.png"), *plots.heatmaps(rows, output)]
    figures = [f for f in figures if f is not None]
    rows_json = [row.to_json(output) for row in rows]
    if base:
        for row, data in zip(rows, rows_json):
            data["final_reward_vs_base_se"] = _delta(row.metrics.get("final_reward"), base)
    compared = {id(row): compare.paired_differences(row, against) for row in rows
                if against and row.status.startswith("finished") and row is not against}
    for row, data in zip(rows, rows_json):
        if id(row) in compared:
            data["vs_reference"] = _json(compared[id(row)])
    report = {"rows": rows_json, "baseline": base, "reference": against.label if against else None,
              "unjoined_evaluations": unjoined, "figures": [f.name for f in figures]}
    (output / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (output / "report.md").write_text(markdown(rows, base, unjoined, figures, against, compared) + "\n")
    return report


def _read_baseline(path: Path) -> dict:
    """reward_mean, reward_se, success_rate, success_se, n of a reporting/baseline.py baseline.json."""
    try:
        data = json.loads(path.read_text())
        return {k: data[k] for k in ("reward_mean", "reward_se", "success_rate", "success_se", "n")}
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"--baseline {path}: not a baseline.json of python -m herl_jax.reporting.baseline") from None


def cell(e: Estimate | None, digits: int = 3, of: int | None = None) -> str:
    """`mean ± half-width`; `(n=k)` added when only k of the row's `of` runs have the number."""
    if e is None:
        return "—"
    mean = round(e.mean, digits) + 0.0  # a mean that rounds to zero is "0.000", not "-0.000"
    text = f"{mean:.{digits}f}" if e.half_width is None else f"{mean:.{digits}f} ± {e.half_width:.{digits}f}"
    return text if of is None or e.n == of else f"{text} (n={e.n})"


def _json(differences: dict) -> dict:
    return {k: (v.to_json() if isinstance(v, Estimate) else v) for k, v in differences.items()}


def markdown(rows: list[table.Row], base: dict | None, unjoined: dict, figures: list[Path],
             reference: table.Row | None = None, compared: dict | None = None) -> str:
    """report.md; `compared`: id(row) -> compare.paired_differences against `reference`."""
    eval_columns = sorted({k for row in rows for k in row.metrics if k.startswith("eval:")})
    header = ["configuration", "status", "seeds", *table.COLUMNS.values(), *eval_columns]
    if base:
        header.append("Δ final vs base (SE)")
    lines = ["# Training report", "", _md_row(header), "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.label, row.status, ",".join(str(r.seed) for r in row.runs)]
        cells += [cell(row.metrics.get(k), 0 if k in ("steps_done", "tokens_per_s") else 3, len(row.runs))
                  for k in (*table.COLUMNS, *eval_columns)]
        if base:
            delta = _delta(row.metrics.get("final_reward"), base)
            cells.append("—" if delta is None else f"{delta:+.1f}")
        lines.append(_md_row(cells))
    lines += ["", RULES, ""]
    if base:
        lines += [f"Base model (before training), same validation prompts: reward {base['reward_mean']:.3f} "
                  f"± {base['reward_se']:.3f}, success rate {base['success_rate']:.3f} ± {base['success_se']:.3f} "
                  f"(± one standard error = sd / sqrt(n) over n = {base['n']} prompts). Δ: (final reward − base "
                  "reward) / base SE.", ""]
    if reference:
        lines += _reference_table(rows, reference, compared or {})
    if unjoined:
        lines += ["## Evaluated checkpoints without a run", "", _md_row(["checkpoint", "headlines"]), "|---|---|"]
        lines += [_md_row([label, ", ".join(f"{b} {v:.3f}" for b, v in h.items()) or "—"])
                  for label, h in unjoined.items()]
        lines.append("")
    lines += [f"![{f.stem}]({f.name})" for f in figures]
    return "\n".join(lines)


def _reference_table(rows: list[table.Row], reference: table.Row, compared: dict) -> list[str]:
    """The section comparing every other finished configuration with `reference` (compare.py)."""
    if not compared:
        return [f"## Against {reference.label}", "", "No other finished configuration to compare with.", ""]
    names = list(compare.COMPARED) + sorted({k for d in compared.values() for k in d if k.startswith("eval:")})
    header = ["configuration", "shared seeds", *(f"Δ {table.COLUMNS.get(n, n)}" for n in names)]
    lines = [f"## Against {reference.label} (paired by seed)", "", _md_row(header), "|" + "---|" * len(header)]
    for row in (r for r in rows if id(r) in compared):
        differences = compared[id(row)]
        seeds = differences["seeds"]
        lines.append(_md_row([row.label, ",".join(map(str, seeds)) or "none",
                              *(cell(differences.get(n), 3, len(seeds)) for n in names)]))
    return lines + ["", "Δ: this configuration's number minus the reference's, run by run over the seeds both have, "
                    "then the mean ± half-width of the 95% t interval over those seeds (one seed: no interval). "
                    "An interval that excludes 0 orders the two configurations.", ""]


def _delta(final: Estimate | None, base: dict) -> float | None:
    """(mean final validation reward - base reward) / base standard error."""
    if final is None or not base["reward_se"] or not math.isfinite(base["reward_se"]):
        return None
    return (final.mean - base["reward_mean"]) / base["reward_se"]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
