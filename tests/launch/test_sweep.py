"""launch/sweep.py: grid expansion, validation before anything runs, --dry-run, the SLURM array script and
manifest (run by bash with a stand-in srun, hostile values included), and the local runner driving a fake
trainer (no real training)."""

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.py")
GRID = ["--grid", "herl.alpha=0,0.05,0.1", "--grid", "train.loss.shaping_gamma=0.1,1"]
NAMES = ["alpha=0_gamma=0.1", "alpha=0_gamma=1", "alpha=0.05_gamma=0.1", "alpha=0.05_gamma=1",
         "alpha=0.1_gamma=0.1", "alpha=0.1_gamma=1"]

# Records its argv in calls.jsonl beside itself; fails for alpha=0.1, else logs a metric and finishes.
FAKE_TRAINER = """
import json, sys
from pathlib import Path
args = sys.argv[1:]
with open(Path(__file__).with_name("calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\\n")
if "--config.herl.alpha=0.1" in args:
    sys.exit(3)
workdir = Path(next(a.split("=", 1)[1] for a in args if a.startswith("--workdir=")))
workdir.mkdir(parents=True, exist_ok=True)
(workdir / "metrics.jsonl").write_text(json.dumps({"step": 2, "reward/mean": 0.25}) + "\\n")
(workdir / "FINISHED").write_text("2\\n")
"""


def _load_sweep():
    spec = importlib.util.spec_from_file_location("launch_sweep", REPO / "launch" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


sweep = _load_sweep()


@pytest.fixture
def fake_trainer(tmp_path):
    """(the --trainer-cmd value, a function returning the argv of every call so far)."""
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    calls = tmp_path / "calls.jsonl"

    def recorded():
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", recorded


def _main(root, *args, trainer_cmd=None, extra=()):
    argv = ["--config", DEMO, "--root", str(root), *args]
    if trainer_cmd:
        argv += ["--trainer-cmd", trainer_cmd]
    return sweep.main([*argv, *(["--", *extra] if extra else [])])


# ------------------------------------------------------------------------------------------ the grid
def test_grid_expands_to_the_product_with_names_and_overrides():
    grid = sweep.parse_grid(["herl.alpha=0,0.05,0.1", "config.train.loss.shaping_gamma=0.1, 1"])
    assert grid == {"herl.alpha": ["0", "0.05", "0.1"], "train.loss.shaping_gamma": ["0.1", "1"]}
    points = sweep.expand(grid)
    assert len(points) == 6 and points[1] == {"herl.alpha": "0", "train.loss.shaping_gamma": "1"}
    key_labels = sweep.labels(list(grid))
    assert [sweep.run_name(p, key_labels) for p in points] == NAMES
    assert sweep.overrides(points[3]) == ["--config.herl.alpha=0.05", "--config.train.loss.shaping_gamma=1"]


def test_labels_fall_back_to_the_full_key_on_a_clash():
    keys = ["rollout.temperature", "revision.temperature", "trainer.steps"]
    assert sweep.labels(keys) == {"rollout.temperature": "rollout.temperature",
                                  "revision.temperature": "revision.temperature", "trainer.steps": "steps"}
    assert sweep.run_name({"model.source": "/ckpt/a b"}, {"model.source": "source"}) == "source=-ckpt-a-b"


@pytest.mark.parametrize("spec", ["herl.alpha", "herl.alpha=", "herl.alpha=0,,1", "=0,1"])
def test_malformed_grid_specs_are_refused(spec):
    with pytest.raises(sweep.SweepError, match="expected KEY=VALUE"):
        sweep.parse_grid([spec])


def test_a_key_given_twice_is_refused():
    with pytest.raises(sweep.SweepError, match="given twice"):
        sweep.parse_grid(["herl.alpha=0", "herl.alpha=1"])


def test_array_spec_compresses_indices():
    assert sweep.array_spec([0, 1, 2, 5], None) == "0-2,5"
    assert sweep.array_spec([3], 2) == "3%2"


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("grid, extra, message", [
    ("herl.alhpa=0,0.1", (), r"unknown config keys: \['herl.alhpa'\]"),
    ("herl.alpha=0,-1", (), "grid point alpha=-1: config.herl.alpha=-1.0: must be >= 0"),
    ("herl.alpha=0,abc", (), "grid point alpha=abc: .*could not convert string to float: 'abc'"),
    ("train.loss.shaping_gamma=1,0", (), "grid point gamma=0: config.train.loss.shaping_gamma=0.0: must be > 0"),
    ("herl.alpha=0", ("--config.rollout.n=1",), "grid point alpha=0: config.rollout.n=1: a group needs"),
    ("herl.alpha=0", ("--config.rollout.nn=4",), r"unknown config keys: \['rollout.nn'\]"),
    ("herl.alpha=0", ("--workdir=elsewhere",), "the sweep sets these itself"),
    ("herl.alpha=0", ("--config.herl.alpha=1",), r"keys both swept and set after `--`: \['herl.alpha'\]"),
])
def test_bad_values_fail_before_anything_runs(tmp_path, capsys, fake_trainer, grid, extra, message):
    trainer_cmd, recorded = fake_trainer
    root = tmp_path / "sweep"
    assert _main(root, "--grid", grid, trainer_cmd=trainer_cmd, extra=extra) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not root.exists() and recorded() == []


# ------------------------------------------------------------------------------------------ dry run
def test_dry_run_prints_every_command_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "sweep"
    assert _main(root, *GRID, "--dry-run", extra=["--config.trainer.steps=3", "--verbosity=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"6 runs validated (0 already finished, 0 failed) under {root}"
    for name, line in zip(NAMES, lines[1:], strict=True):
        argv = shlex.split(line)
        assert argv[:3] == [sys.executable, "-m", "herl_jax.train"]
        assert argv[3:7] == [f"--config={DEMO}", f"--workdir={root / name}", "--config.trainer.steps=3",
                             "--verbosity=1"]  # flags after `--` reach every run
        assert argv[-1] == f"--config.trainer.run_name={name}"
    assert not root.exists()


def test_a_missing_config_file_is_refused(tmp_path, capsys):
    assert sweep.main(["--config", str(tmp_path / "nope.py"), "--root", str(tmp_path / "sweep"),
                       "--grid", "herl.alpha=0", "--dry-run"]) == 2
    assert "cannot load the config file" in capsys.readouterr().err


def test_dry_run_takes_a_config_argument_with_commas(tmp_path, capsys):
    config = f"{REPO / 'configs' / 'paper.py'}:qwen2.5-7b,herl,if"
    assert sweep.main(["--config", config, "--root", str(tmp_path), "--grid", "herl.alpha=0,0.1",
                       "--dry-run"]) == 0
    commands = capsys.readouterr().out.splitlines()[1:]
    assert len(commands) == 2 and all(f"--config={config}" in shlex.split(c) for c in commands)


# ------------------------------------------------------------------------------------------ SLURM
def test_slurm_mode_writes_an_array_script_and_a_manifest(tmp_path, capsys):
    root = tmp_path / "sweep"
    assert _main(root, *GRID, "--mode", "slurm", "--nodes", "2", "--gpus-per-node", "4", "--time", "2:00:00",
                 "--partition", "gpu", "--max-parallel", "3", "--sbatch-option=--account=proj") == 0
    script, manifest = root / "sweep.sbatch", root / "manifest.json"
    assert f"sbatch {script}" in capsys.readouterr().out
    text = script.read_text()
    for directive in ("--array=0-5%3", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4",
                      "--time=2:00:00", "--partition=gpu", "--account=proj", f"--output={root}/logs/%A_%a.out"):
        assert f"#SBATCH {directive}\n" in text
    entries = json.loads(manifest.read_text())
    assert [entry["name"] for entry in entries] == NAMES
    for name, entry in zip(NAMES, entries):
        argv = entry["argv"]
        assert entry["workdir"] == str(root / name)
        assert argv[:2] == [sys.executable, str(REPO / "launch" / "multihost.py")]  # > 1 node: jax.distributed
        config_flags = [a for a in argv if a.startswith("--config.")]
        config = sweep.load_config(DEMO, config_flags)  # each argv parses as the trainer will parse it
        assert config.trainer.run_name == name and f"--workdir={root / name}" in argv


def _stand_ins(tmp_path) -> dict[str, str]:
    """The environment of an array task whose PATH leads first to a stand-in srun that logs its argv to
    srun.jsonl and execs it, and to stand-ins for touch, rm and curl that only log theirs to ran.txt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun_log, ran_log = shlex.quote(str(tmp_path / "srun.jsonl")), shlex.quote(str(tmp_path / "ran.txt"))
    (bin_dir / "srun").write_text(f'#!/bin/bash\n{shlex.quote(sys.executable)} -c "import json, sys; '
                                  f'print(json.dumps(sys.argv[1:]))" "$@" >> {srun_log}\nexec "$@"\n')
    for name in ("touch", "rm", "curl"):
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> {ran_log}\n')
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _run_array_task(root, env, task: int) -> None:
    subprocess.run(["bash", str(root / "sweep.sbatch")], env={**env, "SLURM_ARRAY_TASK_ID": str(task)},
                   check=True, capture_output=True)


def test_slurm_array_task_runs_its_manifest_entry(tmp_path, fake_trainer):
    trainer_cmd, recorded = fake_trainer
    root = tmp_path / "sweep"
    assert _main(root, *GRID, "--mode", "slurm", trainer_cmd=trainer_cmd) == 0
    _run_array_task(root, _stand_ins(tmp_path), 3)
    [call] = recorded()
    assert f"--workdir={root / NAMES[3]}" in call

    # A finished run drops out of the array when the sweep is written again.
    assert _main(root, *GRID, "--mode", "slurm", trainer_cmd=trainer_cmd) == 0
    assert "#SBATCH --array=0-2,4-5\n" in (root / "sweep.sbatch").read_text()


HOSTILE = ["/x;touch PWNED", "$(touch PWNED)", "`touch PWNED`", "a'b\"c' && rm -rf ~ \"", "/y #touch PWNED",
           "$HOME\\n|curl evil"]


def test_hostile_grid_values_reach_the_trainer_as_single_arguments(tmp_path, monkeypatch, fake_trainer):
    """Quotes, `;`, `$(...)`, backticks, `#` and `|` in grid values and in a trainer flag: every array task runs
    srun once, on the array-task launcher, which runs the fake trainer with exactly its run's argv."""
    trainer_cmd, recorded = fake_trainer
    monkeypatch.chdir(tmp_path)  # the script cds here: anything injected would run here too
    root = tmp_path / "sweep"
    flag = "--note=$(touch PWNED); `touch PWNED` # x"
    assert _main(root, "--grid", f"model.source={','.join(HOSTILE)}", "--mode", "slurm",
                 "--job-name=a;$(touch${IFS}PWNED)`x`", trainer_cmd=trainer_cmd, extra=[flag]) == 0
    entries = json.loads((root / "manifest.json").read_text())
    env = _stand_ins(tmp_path)
    for task in range(len(HOSTILE)):
        _run_array_task(root, env, task)
    srun_calls = [json.loads(line) for line in (tmp_path / "srun.jsonl").read_text().splitlines()]
    assert srun_calls == [[sys.executable, str(REPO / "launch" / "array_task.py"), str(root / "manifest.json"),
                           str(task)] for task in range(len(HOSTILE))]
    calls = recorded()
    assert calls == [entry["argv"][2:] for entry in entries]  # the fake trainer's argv after the script path
    assert [[a for a in call if a.startswith("--config.model.source=")] for call in calls] == [
        [f"--config.model.source={value}"] for value in HOSTILE]
    assert all(flag in call for call in calls)
    assert not (tmp_path / "ran.txt").exists() and not list(tmp_path.rglob("PWNED*"))


def test_a_newline_in_an_argv_cannot_split_the_manifest(tmp_path, fake_trainer):
    """Beneath the refusal below: the manifest is JSON and no shell reads it, so even an argv holding a newline
    (written here without the sweep's checks) reaches its task's trainer whole, and the next task runs its own."""
    trainer_cmd, recorded = fake_trainer
    root = tmp_path / "sweep"
    args, _ = sweep.parse_args(["--config", DEMO, "--root", str(root), "--grid", "model.source=/x", "--mode", "slurm"])
    runs = [sweep.Run(name, root / name, (*shlex.split(trainer_cmd), f"--workdir={root / name}",
                                          f"--config.model.source=/{name}\ntouch PWNED #")) for name in ("a", "b")]
    sweep.write_slurm(args, runs)
    env = _stand_ins(tmp_path)
    for task in (0, 1):
        _run_array_task(root, env, task)
    assert recorded() == [list(run.argv[2:]) for run in runs]
    assert not (tmp_path / "ran.txt").exists()


@pytest.mark.parametrize("flags, extra, message", [
    (["--grid", "model.source=/x\ntouch PWNED #,ok"], (), r"--grid 'model.source=/x\\ntouch PWNED #,ok': control"),
    (["--grid", "model.source=/x\rtouch PWNED"], (), r"--grid .*: control characters"),
    (["--grid", "model.source=/x\u2028y"], (), r"--grid .*: control characters"),
    (["--grid", "herl.alpha=0"], ("--note=a\ntouch PWNED",), r"trainer flag '--note=a\\ntouch PWNED': control"),
    (["--grid", "herl.alpha=0", "--job-name", "x\ntouch PWNED"], (), r"--job-name 'x\\ntouch PWNED': control"),
    (["--grid", "herl.alpha=0", "--sbatch-option=--account=p\n#SBATCH -a9"], (), "--sbatch-option .*: control"),
    (["--grid", "herl.alpha=0", "--sbatch-option=--comment=two words"], (), "cannot be empty or hold whitespace"),
    (["--grid", "herl.alpha=0", "--sbatch-option=--comment=a#b"], (), "cannot be empty or hold whitespace"),
    (["--grid", "herl.alpha=0", "--sbatch-option=account=p"], (), "expected an sbatch option"),
    (["--grid", "herl.alpha=0", "--job-name", "it's"], (), "--job-name \"it's\": an #SBATCH value"),
    (["--grid", "herl.alpha=0", "--partition", "gpu a100"], (), "--partition 'gpu a100': an #SBATCH value"),
    (["--grid", "herl.alpha=0", "--time", ""], (), "--time '': an #SBATCH value cannot be empty"),
])
def test_values_that_could_break_the_script_are_refused_before_anything_is_written(tmp_path, capsys, flags, extra,
                                                                                  message):
    root = tmp_path / "sweep"
    assert _main(root, *flags, "--mode", "slurm", extra=extra) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not root.exists()


def test_a_root_that_cannot_go_on_an_sbatch_line_is_refused(tmp_path, capsys):
    root = tmp_path / "my sweep"
    assert _main(root, "--grid", "herl.alpha=0", "--mode", "slurm") == 2
    assert capsys.readouterr().err == f"error: --root {str(root)!r}: an #SBATCH value cannot be empty or hold " \
                                      "whitespace, quotes, a backslash or '#'\n"
    assert not root.exists()


# ------------------------------------------------------------------------------------------ local mode
def test_local_mode_runs_each_point_and_resumes(tmp_path, capsys, fake_trainer):
    trainer_cmd, recorded = fake_trainer
    root = tmp_path / "sweep"
    grid = ["--grid", "herl.alpha=0,0.05,0.1"]
    assert _main(root, *grid, trainer_cmd=trainer_cmd, extra=["--config.trainer.steps=2"]) == 1  # 0.1 fails
    calls = recorded()
    assert [c[1] for c in calls] == [f"--workdir={root}/alpha={a}" for a in ("0", "0.05", "0.1")]
    assert calls[0] == [f"--config={DEMO}", f"--workdir={root}/alpha=0", "--config.trainer.steps=2",
                        "--config.herl.alpha=0", "--config.trainer.run_name=alpha=0"]
    table = capsys.readouterr().out.split("\n\n")[-2].splitlines()
    assert table[0].split() == ["run", "status", "minutes", "step", "reward/mean", "validation/reward_mean"]
    assert table[1].split()[:2] == ["alpha=0", "finished"] and table[1].split()[3:] == ["2", "0.25", "-"]
    assert "failed (exit 3)" in table[3]

    # Rerun: the finished runs are skipped, the failed one runs again.
    assert _main(root, *grid, trainer_cmd=trainer_cmd, extra=["--config.trainer.steps=2"]) == 1
    assert len(recorded()) == 4 and recorded()[-1][1] == f"--workdir={root}/alpha=0.1"
    assert capsys.readouterr().out.count("skipped (finished)") == 2
