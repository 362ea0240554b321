"""Every CLI answers a user's mistake with one `error: ...` line that names the flag, key or file, and a
non-zero exit status (2: the command line, 1: what it names); no traceback unless HERL_DEBUG=1. Each case
runs the real command in a subprocess, with the trainer tests' tiny model where a model is needed."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import read_only
from tests.cli.helpers import PROGRESS, assert_one_line_error, run
from tests.trainer.conftest import config_arg
from tests.training.tmpfs import mounted_tmpfs

TINY = "tests/trainer/tiny_config.py"
PAPER = "configs/paper.py:qwen2.5-7b,herl,if"
TRAIN, EVALUATE, PLAN, CHAT = (["-m", f"herl_jax.{name}"] for name in ("train", "evaluate", "plan", "chat"))
SWEEP, MULTIHOST = ["launch/sweep.py"], ["launch/multihost.py"]


@pytest.fixture(scope="module")
def tiny_config(tiny_checkpoint, hir_files) -> str:
    return f"{TINY}:{config_arg(tiny_checkpoint, hir_files, 'hir')}"


@pytest.fixture(scope="module")
def broken_models(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """The tiny checkpoint broken as downloads and editors break it: weights cut short, a config.json that
    is not JSON, and a file named .gguf that is not GGUF."""
    root = tmp_path_factory.mktemp("broken_models")
    truncated, not_json = root / "truncated", root / "not_json"
    for directory in (truncated, not_json):
        shutil.copytree(tiny_checkpoint, directory)
    weights = truncated / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    (not_json / "config.json").write_text('{"hidden_size": 32,')
    fake = root / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip archive, not GGUF")
    return {"truncated": truncated, "not_json": not_json, "gguf": fake}


@pytest.fixture(scope="module")
def bad_config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "typo.py"
    path.write_text("def get_config(:\n    pass\n")
    return path


# ------------------------------------------------------------------------------------------ train
@pytest.mark.parametrize("flags, needle, status", [
    (["--config.herl.alpha=abc"], "--config.herl.alpha=abc", 2),
    (["--config.herl.alpah=0.1"], "'alpah'", 2),
    (["--config.rollout.n=1,2"], "--config.rollout.n=1,2", 2),
    (["stray"], "unexpected arguments: ['stray']", 2),
    (["--config.data.train_files=/nonexistent/herl/a.jsonl"], "/nonexistent/herl/a.jsonl", 1),
])
def test_train_flags(tmp_path, subprocess_env, tiny_config, flags, needle, status):
    result = run([*TRAIN, "--config", tiny_config, "--workdir", str(tmp_path / "w"), *flags], subprocess_env)
    assert_one_line_error(result, needle, status)


def test_train_missing_config_file(tmp_path, subprocess_env):
    result = run([*TRAIN, "--config", "/nonexistent/herl/config.py", "--workdir", str(tmp_path)], subprocess_env)
    assert_one_line_error(result, "/nonexistent/herl/config.py", 2)


def test_train_config_file_with_a_syntax_error(tmp_path, subprocess_env, bad_config_file):
    result = run([*TRAIN, "--config", str(bad_config_file), "--workdir", str(tmp_path)], subprocess_env)
    line = assert_one_line_error(result, f"{bad_config_file}, line 1", 2)
    assert "SyntaxError" in line


def test_train_read_only_workdir(subprocess_env, tiny_config, read_only_dir):
    workdir = read_only_dir / "run"
    result = run([*TRAIN, "--config", tiny_config, "--workdir", str(workdir)], subprocess_env)
    assert_one_line_error(result, str(workdir), 1)


def test_train_read_only_checkpoints_folder(tmp_path, subprocess_env, tiny_config):
    """Refused at start, naming the folder (before this check: trained, exported, then waited 300 s in orbax and
    exited with 274 lines of tracebacks)."""
    workdir = tmp_path / "w"
    with read_only(workdir / "checkpoints"):
        result = run([*TRAIN, "--config", tiny_config, "--workdir", str(workdir)], subprocess_env, timeout=120)
    why = "read-only file system" if os.geteuid() == 0 else "permission denied"
    assert_one_line_error(result, f"{why}: {workdir / 'checkpoints'}", 1)
    assert not (workdir / "metrics.jsonl").exists() and "loaded the policy" not in result.stderr


def test_train_on_a_full_disk(subprocess_env, tiny_config, full_dir):
    workdir = full_dir / "run"
    result = run([*TRAIN, "--config", tiny_config, "--workdir", str(workdir)], subprocess_env)
    line = assert_one_line_error(result, "no space left on device while writing ", 1)
    assert str(workdir) in line
    assert "Logging error" not in result.stderr  # train.log that cannot be written is dropped, said once


def test_train_whose_disk_fills_at_its_second_checkpoint(tmp_path, subprocess_env, tiny_config):
    """A checkpoint of the tiny run (parameters and Adam state, float32) takes 17 MB: on a 26 MB tmpfs the first
    fits and the second does not. One line naming the checkpoint that is intact, and none of the tracebacks
    tensorstore's threads printed ("Event loop is closed", about 30 of them); not a failed run (no FAILED)."""
    with mounted_tmpfs(tmp_path / "disk", "26m") as disk:
        workdir = disk / "w"
        result = run([*TRAIN, "--config", tiny_config, "--workdir", str(workdir), "--config.trainer.steps=3",
                      "--config.trainer.validate_every=0"], subprocess_env)
        line = assert_one_line_error(result, "no space left on device while saving checkpoint 2 to "
                                     f"{workdir / 'checkpoints'}; checkpoint 1 is intact", 1, also=PROGRESS)
        assert "Event loop is closed" not in result.stderr, line
        assert not (workdir / "FAILED").exists() and not (workdir / "FINISHED").exists()


def test_train_truncated_weights(tmp_path, subprocess_env, hir_files, broken_models):
    config = f"{TINY}:{config_arg(broken_models['truncated'], hir_files, 'hir')}"
    result = run([*TRAIN, "--config", config, "--workdir", str(tmp_path)], subprocess_env)
    assert_one_line_error(result, str(broken_models["truncated"] / "model.safetensors"), 1)


# ------------------------------------------------------------------------------------------ evaluate
@pytest.mark.parametrize("flags, needle", [
    (["--limit", "abc"], "--limit"),
    (["--limit", "-1"], "--limit=-1: must be >= 1"),
    (["--limit", "0"], "--limit=0: must be >= 1"),
    (["--benchmarks", ""], "--benchmarks: no benchmark named"),
    (["--config.passk.ks=1,x"], "--config.passk.ks: item 'x' is not of type int"),
])
def test_evaluate_flags(tmp_path, subprocess_env, flags, needle):
    result = run([*EVALUATE, "--output", str(tmp_path), "--checkpoint", "/nonexistent/herl", *flags],
                 subprocess_env)
    assert_one_line_error(result, needle, 2)
    assert not any(tmp_path.iterdir())  # refused before anything was evaluated


# ------------------------------------------------------------------------------------------ plan
@pytest.mark.parametrize("flags, needle", [
    (["--num_devices=-4"], "--num_devices=-4: must be >= 1"),
    (["--num_devices=0"], "--num_devices=0: must be >= 1"),
    (["--device_memory_gib=0"], "--device_memory_gib=0: must be > 0"),
])
def test_plan_flags(subprocess_env, flags, needle):
    assert_one_line_error(run([*PLAN, f"--config={PAPER}", *flags], subprocess_env), needle, 2)


# ------------------------------------------------------------------------------------------ chat
@pytest.mark.parametrize("flags, needle", [
    (["--n", "0"], "argument --n: '0' must be >= 1"),
    (["--top-p", "1.5"], "argument --top-p: '1.5' must be > 0 and <= 1"),
    (["--temperature", "abc"], "argument --temperature: 'abc' is not a number"),
    (["--max-new-tokens", "0"], "argument --max-new-tokens: '0' must be >= 1"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_chat_flags(subprocess_env, flags, needle):
    assert_one_line_error(run([*CHAT, "hello", "--model", "/nonexistent/herl", *flags], subprocess_env), needle, 2)


@pytest.mark.parametrize("kind, needle", [
    ("truncated", "model.safetensors: not a readable safetensors file"),
    ("not_json", "config.json is not valid JSON"),
    ("gguf", "model.gguf: not a readable GGUF file"),
])
def test_chat_broken_model_files(subprocess_env, broken_models, kind, needle):
    result = run([*CHAT, "hello", "--model", str(broken_models[kind])], subprocess_env)
    line = assert_one_line_error(result, needle, 1)
    assert str(broken_models[kind]) in line


# ------------------------------------------------------------------------------------------ launch/
@pytest.mark.parametrize("flags, needle", [
    (["--grid", "herl.alpha"], "--grid 'herl.alpha': expected KEY=VALUE"),
    (["--grid", "herl.alpha=0", "--", "--config.rollout.n=abc"], "--config.rollout.n=abc"),
])
def test_sweep_flags(tmp_path, subprocess_env, flags, needle):
    result = run([*SWEEP, "--config", "configs/demo.py", "--root", str(tmp_path / "sweep"), *flags], subprocess_env)
    assert_one_line_error(result, needle, 2)


def test_sweep_missing_root_flag(subprocess_env):
    assert_one_line_error(run([*SWEEP, "--config", "configs/demo.py", "--grid", "herl.alpha=0"], subprocess_env),
                          "the following arguments are required: --root", 2)


def test_sweep_on_a_full_disk(subprocess_env, full_dir):
    root = full_dir / "sweep"
    result = run([*SWEEP, "--config", "configs/demo.py", "--root", str(root), "--grid", "herl.alpha=0,0.1",
                  "--mode", "slurm"], subprocess_env)
    assert_one_line_error(result, f"no space left on device while writing {root / 'manifest.json'}", 1)


@pytest.mark.parametrize("flags, needle", [
    (["--num-processes", "0", "--process-id", "0"], "argument --num-processes: '0' must be >= 1"),
    (["--coordinator-address", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"],
     "--process-id=2: must be < --num-processes=2"),
    (["--num-processes", "2"], "give --coordinator-address, --num-processes and --process-id together"),
])
def test_multihost_flags(subprocess_env, flags, needle):
    assert_one_line_error(run([*MULTIHOST, *flags, "--config", "configs/demo.py"], subprocess_env), needle, 2)


def test_multihost_passes_trainer_flags_to_the_trainers_parsing(tmp_path, subprocess_env):
    result = run([*MULTIHOST, "--config", "configs/demo.py", "--workdir", str(tmp_path), "--config.herl.alpha=abc"],
                 subprocess_env)
    assert_one_line_error(result, "--config.herl.alpha=abc", 2, also=re.compile(r"jax\.distributed: process 0 of 1"))


# ------------------------------------------------------------------------------------------ HERL_DEBUG
@pytest.mark.parametrize("args", [
    [*PLAN, f"--config={PAPER}", "--num_devices=0"],
    [*CHAT, "hello", "--model", "/nonexistent/herl"],
])
def test_herl_debug_adds_the_traceback(subprocess_env, args):
    quiet = run(args, subprocess_env)
    debug = run(args, dict(subprocess_env, HERL_DEBUG="1"))
    line = assert_one_line_error(quiet, "")
    assert debug.returncode == quiet.returncode
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line  # the same one line, last
