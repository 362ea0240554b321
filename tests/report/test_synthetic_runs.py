"""The report on run directories written here: pooled means and 95% t intervals against a float64 numpy
re-derivation (t quantiles from a textbook table), statuses, the evaluation join, the plots and the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from herl_jax.reporting.stats import Estimate, t_quantile_975
from herl_jax.reporting.write import cell, write_report
from herl_jax.workdir_lock import WorkdirLock

REPO = Path(__file__).resolve().parents[2]
# Two-sided 95% Student t quantiles, from a printed table (not from the code under test).
T_TABLE = {1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 9: 2.262157, 29: 2.045230, 40: 2.021075, 60: 2.000298,
           120: 1.979930}
T_RTOL = 3e-7  # the relative error of a half-width from the table (quantiles rounded to 6 decimals, all > 1.9)
STEPS = 6
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(root: Path, alpha: float, gamma: float, seed: int, *, steps_logged: int = STEPS,
              finished: bool = True) -> tuple[Path, list[dict]]:
    """A run directory as the trainer leaves it, with random metrics; returns (dir, metrics lines)."""
    name = f"alpha={alpha}_gamma={gamma}_seed={seed}"
    run = root / name
    run.mkdir(parents=True)
    config = {"herl": {"variant": "herl", "alpha": alpha},
              "train": {"loss": {"shaping_gamma": gamma, "kl_coef": 0.0}},
              "trainer": {"seed": seed, "run_name": name, "steps": STEPS}, "data": {"train_files": ["a.jsonl"]}}
    (run / "config.json").write_text(json.dumps(config))
    (run / "git_revision.txt").write_text("abc\n")
    rng = np.random.default_rng(abs(hash((alpha, gamma, seed))) % 2**32)
    lines = []
    for step in range(1, steps_logged + 1):
        line = {"step": step, "reward/mean": rng.uniform(), "revision/rate": rng.uniform(),
                "train/entropy": rng.uniform(1, 3),
                "revision/gain": float("nan") if step == 1 else rng.normal(),
                "perf/sample_tokens_per_s": rng.uniform(50, 500), "time/step": rng.uniform(5, 60)}
        if rng.uniform() < 0.5:  # a step without a revised group logs no revision success
            line["revision/success_rate"] = rng.uniform()
        if step % 2 == 0:
            line.update({"validation/reward_mean": rng.uniform(), "validation/success_rate": rng.uniform()})
        lines.append(line)
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    if finished:
        (run / "FINISHED").write_text(f"{STEPS}\n")
    return run, lines


def expected(values: list[float]) -> tuple[float, float | None]:
    """Mean and the 95% t half-width in float64 numpy, with the table's quantile."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 1:
        return float(x[0]), None
    return float(x.mean()), T_TABLE[x.size - 1] * float(x.std(ddof=1)) / np.sqrt(x.size)


def per_run(lines: list[dict]) -> dict[str, float]:
    val = [m["validation/reward_mean"] for m in lines if "validation/reward_mean" in m]
    succ = [m["validation/success_rate"] for m in lines if "validation/success_rate" in m]
    gains = np.array([m["revision/gain"] for m in lines], dtype=np.float64)
    return {"final_reward": val[-1], "best_reward": max(val), "reward_area": float(np.mean(val)), "final_success": succ[-1], "best_success": max(succ),
            "revision_rate": float(np.mean([m["revision/rate"] for m in lines])),
            "revision_gain": float(np.nanmean(gains)),
            "tokens_per_s": float(np.median([m["perf/sample_tokens_per_s"] for m in lines])),
            "step_minutes": float(np.sum([m["time/step"] for m in lines])) / 60, "steps_done": float(len(lines))}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 2 x 2 α × γ sweep: 3 seeds per cell, 5 in one cell, and beside the finished runs one run of each
    other status."""
    root = tmp_path_factory.mktemp("sweep")
    seeds = {(0.0, 0.1): 3, (0.0, 1.0): 3, (0.05, 0.1): 5, (0.05, 1.0): 3}
    lines = {cell: [write_run(root, *cell, s)[1] for s in range(n)] for cell, n in seeds.items()}
    running, _ = write_run(root, 0.0, 0.1, 10, steps_logged=3, finished=False)
    held = WorkdirLock(running).acquire()  # as a live trainer holds it: the file and its flock
    # A lock file left by a run that died, whose pid now belongs to a live process (this one): no flock, so
    # not running, as the trainer itself would take it over.
    reused, _ = write_run(root, 0.0, 0.1, 14, steps_logged=2, finished=False)
    (reused / "herl.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, _ = write_run(root, 0.0, 0.1, 11, steps_logged=2, finished=False)
    (stale / "herl.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    failed, _ = write_run(root, 0.0, 1.0, 12, steps_logged=1, finished=False)
    (failed / "train.log").write_text("2026-01-01 00:00:00,000 INFO x: start\nTraceback (most recent call last):\n")
    elsewhere, _ = write_run(root, 0.05, 1.0, 13, steps_logged=4, finished=False)
    (elsewhere / "herl.lock").write_text(json.dumps({"host": "some-other-host", "pid": 1}))
    # launch/sweep.py's SLURM manifest names a run that has not started, and one that has.
    (root / "manifest.json").write_text(json.dumps([
        {"name": name, "workdir": str(workdir), "argv": ["python", "-m", "herl_jax.train", f"--workdir={workdir}"]}
        for name, workdir in (("alpha=9_seed=0", root / "alpha=9_seed=0"), (running.name, running))]))
    # An evaluation of each alpha=0.05, gamma=1 run's export, beside it.
    scores = []
    for s in range(3):
        run = root / f"alpha=0.05_gamma=1.0_seed={s}"
        scores.append(0.2 + 0.1 * s)
        (run / "eval").mkdir()
        (run / "eval" / "results.json").write_text(json.dumps({"export": {
            "label": "export", "source": str(run / "export"),
            "benchmarks": {"ifeval": {"pass@1": {"prompt_strict": scores[-1], "n": 100}}}}}))
    output = root.parent / (root.name + "_report")
    report = write_report([root], output)
    yield root, output, report, lines, scores
    held.release()


def rows_by(report: dict) -> dict[tuple, dict]:
    out = {}
    for row in report["rows"]:
        key = (row["params"].get("herl.alpha"), row["params"].get("train.loss.shaping_gamma"),
               row["status"].split(",")[0])
        out.setdefault(key, []).append(row)
    return out


def test_pooled_means_and_intervals_match_a_numpy_rederivation(sweep):
    _, _, report, lines, _ = sweep
    rows = rows_by(report)
    for (alpha, gamma), runs in lines.items():
        (row,) = rows[(alpha, gamma, f"finished ({len(runs)} seeds)")]
        assert row["seeds"] == list(range(len(runs)))
        numbers = [per_run(run_lines) for run_lines in runs]
        for key in numbers[0]:
            mean, half = expected([n[key] for n in numbers])
            got = row["metrics"][key]
            assert got["n"] == len(runs)
            np.testing.assert_allclose(got["mean"], mean, rtol=1e-12, err_msg=key)
            np.testing.assert_allclose(got["ci95_half_width"], half, rtol=T_RTOL, atol=1e-12, err_msg=key)
        assert [p["step"] for p in row["curves"]["validation/reward_mean"]] == [2, 4, 6]
        for key in ("validation/reward_mean", "train/entropy", "reward/mean", "revision/rate",
                    "revision/success_rate"):
            logged = sorted({m["step"] for run_lines in runs for m in run_lines if key in m})
            assert [p["step"] for p in row["curves"][key]] == logged, key
            for point in row["curves"][key]:
                values = [m[key] for run_lines in runs for m in run_lines if m["step"] == point["step"] and key in m]
                mean, half = expected(values)
                assert point["n"] == len(values)
                np.testing.assert_allclose(point["mean"], mean, rtol=1e-12)
                if half is None:
                    assert point["ci95_half_width"] is None
                else:
                    np.testing.assert_allclose(point["ci95_half_width"], half, rtol=T_RTOL)


def test_every_run_that_is_not_finished_has_its_own_row_with_its_status(sweep):
    _, _, report, _, _ = sweep
    statuses = {Path(row["runs"][0]).name: row["status"] for row in report["rows"] if len(row["runs"]) == 1}
    assert statuses == {"alpha=0.0_gamma=0.1_seed=10": "running, step 3/6",
                        "alpha=0.0_gamma=0.1_seed=11": "unfinished, step 2/6",
                        "alpha=0.0_gamma=0.1_seed=14": "unfinished, step 2/6",
                        "alpha=0.0_gamma=1.0_seed=12": "failed, step 1/6",
                        "alpha=0.05_gamma=1.0_seed=13": "running (on some-other-host), step 4/6",
                        "alpha=9_seed=0": "not started, step 0/?"}
    pooled = [row for row in report["rows"] if row["status"].startswith("finished")]
    assert sum(len(row["runs"]) for row in pooled) == 3 + 3 + 5 + 3  # unfinished runs never enter a mean


def test_evaluations_beside_a_run_join_its_row(sweep):
    _, _, report, _, scores = sweep
    (row,) = rows_by(report)[(0.05, 1.0, "finished (3 seeds)")]
    mean, half = expected(scores)
    got = row["metrics"]["eval:ifeval"]
    np.testing.assert_allclose(got["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(got["ci95_half_width"], half, rtol=T_RTOL)
    assert all("eval:ifeval" not in r["metrics"] or r is row for r in report["rows"])


def test_plots_are_pngs_and_the_markdown_shows_every_row(sweep):
    import matplotlib.pyplot as plt

    _, output, report, _, _ = sweep
    assert report["figures"] == ["learning_curves.png", "training_dynamics.png", "heatmap.png"]
    for name in report["figures"]:
        data = (output / name).read_bytes()
        assert data[:8] == PNG_MAGIC
        height, width, _ = plt.imread(output / name).shape
        assert height > 100 and width > 100
    markdown = (output / "report.md").read_text()
    assert markdown.count("\n| alpha=") == len(report["rows"])  # the run not started is labelled by its name
    assert "running (on some-other-host), step 4/6" in markdown and "failed, step 1/6" in markdown


def test_t_quantiles_match_the_table():
    for df, value in T_TABLE.items():
        assert abs(t_quantile_975(df) - value) <= 5e-7, df  # the table's values are rounded to 6 decimals
    with pytest.raises(ValueError, match="df=0: must be >= 1"):
        t_quantile_975(0)


def test_the_report_holds_paths_relative_to_its_folder_only(sweep, tmp_path, monkeypatch):
    root = sweep[0]
    monkeypatch.chdir(tmp_path)
    Path("evals").mkdir()
    Path("evals/results.json").write_text(json.dumps({"base": {"label": "base", "source": "smollm2-135m-instruct",
        "benchmarks": {"ifeval": {"pass@1": {"prompt_strict": 0.1, "n": 100}}}}}))
    output = tmp_path / "deep" / "out"
    report = write_report([root], output, eval_files=[Path("evals/results.json")])  # the eval file cwd-relative
    written = (output / "report.json").read_text() + (output / "report.md").read_text()
    assert str(root) not in written and str(tmp_path) not in written
    run_dirs = sorted(p.resolve() for p in [*root.iterdir(), root / "alpha=9_seed=0"] if p.name != "manifest.json")
    listed = [run for row in report["rows"] for run in row["runs"]]
    assert not any(Path(run).is_absolute() for run in listed)
    assert sorted((output / run).resolve() for run in listed) == sorted(run_dirs)
    (key,) = report["unjoined_evaluations"]
    assert key == "base (../../evals/results.json)"
    assert (output / "../../evals/results.json").resolve() == (tmp_path / "evals" / "results.json").resolve()
    assert f"| {key} | ifeval 0.100 |" in written


def test_cli_writes_the_report_and_refuses_a_missing_path_in_one_line(sweep, tmp_path):
    root = sweep[0]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "herl_jax.report", str(root), "--output", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "report.md").exists() and (tmp_path / "r" / "learning_curves.png").exists()
    missing = subprocess.run([sys.executable, "-m", "herl_jax.report", str(tmp_path / "nope"), "--output",
                              str(tmp_path / "r2")], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such run directory or sweep root"]


def test_a_baseline_gives_each_row_its_distance_from_the_base_model_in_standard_errors(sweep, tmp_path):
    root, _, _, lines, _ = sweep
    per_prompt = np.random.default_rng(7).choice([0.0, 0.5, 1.0], size=64)
    se = float(np.std(per_prompt, ddof=1) / np.sqrt(per_prompt.size))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"reward_mean": float(per_prompt.mean()), "reward_se": se, "success_rate": 0.25,
                                    "success_se": 0.05, "n": 64, "records": []}))
    report = write_report([root], tmp_path / "out", baseline=baseline)
    (row,) = rows_by(report)[(0.0, 1.0, "finished (3 seeds)")]
    final = np.mean([[m for m in run_lines if "validation/reward_mean" in m][-1]["validation/reward_mean"]
                     for run_lines in lines[(0.0, 1.0)]])
    np.testing.assert_allclose(row["final_reward_vs_base_se"], (final - per_prompt.mean()) / se, rtol=1e-9)
    assert "Δ final vs base (SE)" in (tmp_path / "out" / "report.md").read_text()


def test_a_reference_gives_each_configuration_its_difference_paired_by_seed(sweep, tmp_path):
    root, _, _, lines, _ = sweep
    report = write_report([root], tmp_path / "out", reference="alpha=0,gamma=0.1")
    assert report["reference"] == "alpha=0.0, gamma=0.1"
    reference = [per_run(run_lines) for run_lines in lines[(0.0, 0.1)]]  # seeds 0, 1, 2
    for (alpha, gamma), runs in lines.items():
        (row,) = rows_by(report)[(alpha, gamma, f"finished ({len(runs)} seeds)")]
        if (alpha, gamma) == (0.0, 0.1):
            assert "vs_reference" not in row
            continue
        differences = row["vs_reference"]
        assert differences["seeds"] == [0, 1, 2]  # the 5-seed cell shares three with the reference
        for key in ("final_reward", "final_success"):
            mean, half = expected([per_run(runs[s])[key] - reference[s][key] for s in range(3)])
            got = differences[key]
            assert got["n"] == 3
            np.testing.assert_allclose(got["mean"], mean, rtol=1e-12, err_msg=key)
            np.testing.assert_allclose(got["ci95_half_width"], half, rtol=T_RTOL, err_msg=key)
        assert differences.get("eval:ifeval") is None  # only one side was evaluated: no difference
    markdown = (tmp_path / "out" / "report.md").read_text()
    section = markdown.split("## Against alpha=0.0, gamma=0.1 (paired by seed)")[1]
    assert section.count("| 0,1,2 |") == 3


def test_a_reference_that_names_no_single_configuration_is_refused_in_one_line(sweep, tmp_path):
    root = sweep[0]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for reference, message in (("alpha=0.0", "matches 2 configurations"), ("alpha=7", "matches no finished"),
                               ("alpha", "expected KEY=VALUE")):
        done = subprocess.run([sys.executable, "-m", "herl_jax.report", str(root), "--output", str(tmp_path / "r"),
                               "--reference", reference], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=300)
        assert done.returncode != 0
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: --reference '{reference}'") and message in line, line
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_a_number_only_some_seeds_have_is_marked_with_its_count(tmp_path):
    root = tmp_path / "sweep"
    runs = [write_run(root, 0.0, 0.1, seed)[0] for seed in range(3)]
    (runs[0] / "eval").mkdir()
    (runs[0] / "eval" / "results.json").write_text(json.dumps({"export": {
        "label": "export", "source": str(runs[0] / "export"),
        "benchmarks": {"ifeval": {"pass@1": {"prompt_strict": 0.25, "n": 100}}}}}))
    write_report([root], tmp_path / "out")
    header, _, row = (tmp_path / "out" / "report.md").read_text().splitlines()[2:5]
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | ")))
    assert cells["eval:ifeval"] == "0.250 (n=1)"
    assert "(n=" not in cells["final val. reward"] and " ± " in cells["final val. reward"]


def test_a_mean_difference_that_rounds_to_zero_is_shown_without_a_sign():
    # Paired differences of 0.00, +0.02 and -0.02 (an IFBench column of docs/results.md) average to a float a
    # hair below zero; the table shows it as 0.000, and keeps the sign of a mean that does not round away.
    tiny = float(np.mean([0.0, 0.02, -0.02]) - 1e-17)
    assert cell(Estimate(mean=tiny, half_width=0.05, n=3)) == "0.000 ± 0.050"
    assert cell(Estimate(mean=-0.0104, half_width=None, n=1)) == "-0.010"
