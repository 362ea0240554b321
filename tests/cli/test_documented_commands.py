"""Issue 13 item 1: every shell command shown in README.md, launch/README.md and docs/*.md runs as shown, in a
smoke form on CPU.

Collected: the lines of fenced ```bash / ```sh / ```shell / ```console blocks (backslash continuations
joined, comments dropped), and `$ `-prompted lines of untagged blocks. Each command is either run (RUNNABLE)
or listed in SKIPPED with the reason; a new command that is neither fails `test_every_command_is_run_or_skipped`,
so the docs cannot rot. The smoke form is the command with exactly these changes, and no others:
SUBSTITUTIONS (user paths -> the tiny test model, data and a temporary directory; a sweep's grid cut to its
first value per key) and, appended, SMOKE_TRAIN_FLAGS (one small step) or SMOKE_EVALUATE_FLAGS. Commands run
in the order the docs show them, in one temporary directory: the README's `evaluate` reads the export its
demo `train` wrote.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import REPO, run

DOCS = ("README.md", "launch/README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")))
SHELL_TAGS = ("bash", "sh", "shell", "console")

# Commands (matched from their start) that run here, after SUBSTITUTIONS.
RUNNABLE = ("python -m herl_jax.train ", "python -m herl_jax.evaluate ", "python -m herl_jax.plan ",
            "python launch/sweep.py ", "python -m herl_jax.reporting.baseline ", "python -m herl_jax.report ",
            "python -m herl_jax.samples ")
TRAINING_CONFIG = ("herl_jax.train", "herl_jax.reporting.baseline")  # take SMOKE_TRAIN_FLAGS
# Commands (matched from their start) that cannot run on a CPU test machine, and why.
SKIPPED = {
    "python3.11 -m venv ": "creates the environment the tests run in (scripts/setup.sh)",
    ".venv/bin/pip install ": "installs packages from the network",
    "CONFIG=configs/paper.py:qwen2.5-7b,herl,if WORKDIR=runs/q7-herl-if sbatch ": "submits a SLURM job",
    "sbatch ": "submits a SLURM job",
    "tensorboard --logdir ": "a server; tests/cli/test_tensorboard.py starts it and reads our scalars back",
    "python launch/multihost.py --coordinator-address host0:1234 ": "one process per host, on two hosts "
    "(tests/trainer/test_multi_process_signals.py runs two such processes on 127.0.0.1)",
    "python -m herl_jax.compiled ": "compiles the paper's 7B programs at full depth for 8 devices (minutes); "
    "tests/parallel/test_compiled_programs.py runs the same command at 2 layers and checks its figures",
    "for ": "shell loop syntax; the loop's body runs on its own, its variable set by SUBSTITUTIONS",
    "done": "shell loop syntax (see `for `)",
}


def substitutions(tmp: Path, model: Path, train_file: Path) -> list[tuple[str, str]]:
    """(pattern, replacement): a shell loop's variable -> one value; user checkpoints and data -> the tiny
    model and data; runs/ and docs/ outputs -> `tmp`; --limit -> 1 example; a sweep's grid -> its first value
    per key (one run)."""
    return [
        (r"\$variant\b", "herl"),  # docs/results.md's loops: one variant, and that sweep's seed-0 run
        (r"\$run\b", "runs/small/herl/seed=0"),
        (r"--reference variant=\w+", "--reference variant=herl"),  # the one variant the smoke sweep ran
        (r"--output docs/", f"--output {tmp}/docs/"),
        (r"/ckpt/[\w.-]+", str(model)),
        (r"/data/[\w.-]+\.jsonl", str(train_file)),
        (r"=smollm2-135m-instruct\b", f"={model}"),
        (r"(?<![\w/])runs/", f"{tmp}/runs/"),
        (r"\[?--limit \d+\]?", "--limit 1"),
        (r"(--grid [\w.]+=[^,\s]+)\S*", r"\1"),
    ]


# One small training step on the tiny model (a 1024-token context) for any training config, every config
# with the same shapes and dtypes, so the programs compiled for the first command serve the others.
SMOKE_TRAIN_FLAGS = (
    "--config.trainer.steps=1", "--config.trainer.prompts_per_step=2", "--config.trainer.validate_every=0",
    "--config.trainer.log_samples_every=1",  # the samples log, which the README's herl_jax.samples renders
    "--config.trainer.validation_prompts=2", "--config.model.dtype=float32", "--config.model.remat=False",
    "--config.herl.max_candidates=1", "--config.rollout.prompt_bucket=64", "--config.revision.prompt_bucket=128",
    "--config.trainer.sequence_bucket=128",
    "--config.trainer.score_overlap_chunks=1", "--config.rollout.n=2", "--config.rollout.max_new_tokens=8",
    "--config.rollout.max_prompt_len=192", "--config.revision.max_new_tokens=8", "--config.revision.max_prompt_len=512",
    "--config.train.ppo.mini_batch_size=6", "--config.train.ppo.micro_batch_size=3", "--config.rubrics.workers=1",
)
SMOKE_EVALUATE_FLAGS = ("--config.greedy.max_new_tokens=8", "--config.greedy.max_prompt_len=512",
                        "--config.checkers.workers=1")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) of every shell command in DOCS, in order; where = FILE:LINE of its first line."""
    found = []
    for name in DOCS:
        lines, block, tag = (REPO / name).read_text().splitlines(), None, ""
        for number, line in enumerate(lines, 1):
            if line.strip().startswith("```"):
                if block is None:
                    block, tag = [], line.strip()[3:].strip()
                else:
                    found += [(f"{name}:{n}", c) for n, c in _commands(block, prompted=tag not in SHELL_TAGS)]
                    block = None
            elif block is not None:
                block.append((number, line))
    return found


def _commands(block: list[tuple[int, str]], prompted: bool) -> list[tuple[int, str]]:
    """Joins continuation lines and drops comments; in an untagged block only `$ ` lines are commands."""
    commands, pending, start = [], "", 0
    for number, line in block:
        if prompted:
            if line.startswith("$ "):
                commands.append((number, line[2:].strip()))
            continue
        start = start or number
        pending += re.sub(r"(^|\s)#.*$", "", line).rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if pending.strip():
                commands.append((start, " ".join(pending.split())))
            pending, start = "", 0
    return commands


def smoke_form(command: str, subs: list[tuple[str, str]], model: Path) -> list[str]:
    """The argv that runs `command` here: SUBSTITUTIONS, then the smoke flags of its kind."""
    for pattern, replacement in subs:
        command = re.sub(pattern, replacement, command)
    argv = shlex.split(command)
    argv[0] = sys.executable
    if argv[1] == "-m" and argv[2] in TRAINING_CONFIG:
        argv += [f"--config.model.source={model}", *SMOKE_TRAIN_FLAGS]
    elif argv[1] == "launch/sweep.py" and "--mode" not in argv:  # a local sweep trains: the trainer's flags
        argv += ([] if "--" in argv else ["--"]) + [f"--config.model.source={model}", *SMOKE_TRAIN_FLAGS]
    elif argv[1:3] == ["-m", "herl_jax.evaluate"]:
        argv += list(SMOKE_EVALUATE_FLAGS)
    return argv[1:]


COMMANDS = documented_commands()
TO_RUN = [(where, c) for where, c in COMMANDS if c.startswith(RUNNABLE)]


def test_every_command_is_run_or_skipped():
    assert len(COMMANDS) >= 8 and TO_RUN
    unknown = [(where, c) for where, c in COMMANDS if not c.startswith((*RUNNABLE, *SKIPPED))]
    assert not unknown, f"documented commands neither run nor listed as skipped (with a reason): {unknown}"
    stale = [prefix for prefix in SKIPPED if not any(c.startswith(prefix) for _, c in COMMANDS)]
    assert not stale, f"SKIPPED lists commands the docs no longer show: {stale}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint, hir_files):
    tmp = tmp_path_factory.mktemp("documented")
    return substitutions(tmp, tiny_checkpoint, hir_files[0]), tiny_checkpoint


@pytest.mark.parametrize("where, command", TO_RUN, ids=[where for where, _ in TO_RUN])
def test_documented_command_runs(where, command, workspace, subprocess_env):
    subs, model = workspace
    argv = smoke_form(command, subs, model)
    result = run(argv, subprocess_env, timeout=600)
    assert result.returncode == 0, f"{where}: {shlex.join(argv)}\n{result.stderr[-3000:]}"
