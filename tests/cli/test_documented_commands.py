"""Issue 13 item 1: every shell command shown in README.md, launch/README.md and docs/*.md runs as shown, in a
smoke form on CPU.

Collected: the lines of fenced ```bash / ```sh / ```shell / ```console blocks (backslash continuations
joined, comments dropped), and `$ `-prompted lines of untagged blocks. Each command is either run (RUNNABLE)
or listed in SKIPPED with the reason; a new command that is neither fails `test_every_command_is_run_or_skipped`,
so the docs cannot rot. The smoke form is the command with exactly these changes, and no others:
SUBSTITUTIONS (user paths -> the tiny test model, data and a temporary directory; a sweep's grid cut to its
first value per key) and, appended, SMOKE_TRAIN_FLAGS (one small step; for SFT / DPO, offline_smoke_flags in place
of the same keys) or SMOKE_EVALUATE_FLAGS. Commands run in the order the docs show them, in one temporary
directory: the README's `export` and `evaluate` read the checkpoint and the export its demo `train` wrote.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import REPO, run
from tests.trainer.conftest import write_jsonl

DOCS = ("README.md", "launch/README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")))
SHELL_TAGS = ("bash", "sh", "shell", "console")

# Commands (matched from their start) that run here, after SUBSTITUTIONS.
RUNNABLE = ("python -m herl_jax.train ", "python -m herl_jax.evaluate ", "python -m herl_jax.plan ",
            "python launch/sweep.py ", "python -m herl_jax.reporting.baseline ", "python -m herl_jax.report ",
            "python -m herl_jax.export ", "python -m herl_jax.samples ")
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
    "bash scripts/table3.sh": "trains 18 small-scale runs one after another (hours); each is the sweep command "
    "of docs/results.md, which runs here in smoke form",
    "bash scripts/offline_baselines.sh": "trains the 6 small-scale SFT and DPO runs one after another; each is the "
    "training command of docs/results.md beside it, which runs here in smoke form",
    "for ": "shell loop syntax; the loop's body runs on its own, its variable set by SUBSTITUTIONS",
    "done": "shell loop syntax (see `for `)",
    "python -m herl_jax.build_offline_data ": "samples the base model on all 320 training prompts (long on a CPU) "
    "and writes into the package; tests/cli/test_build_offline_data.py runs its selection on tiny data",
}


def substitutions(tmp: Path, model: Path, train_file: Path) -> list[tuple[str, str]]:
    """(pattern, replacement): a shell loop's variable -> one value; user checkpoints and data -> the tiny
    model and data; runs/ and docs/ outputs -> `tmp`; --limit -> 1 example; a sweep's grid -> its first value
    per key (one run)."""
    return [
        (r"\$variant\b", "herl"),  # docs/results.md's loops: one variant, and that sweep's seed-0 run
        (r"\$run\b", "runs/small/herl/seed=0"),
        (r"docs/results/(table3|small)/runs\b", "runs/small"),  # scripts/table3.sh and offline_baselines.sh
        # are skipped; their reports read the smoke sweep's runs
        (r"--reference variant=\w+", "--reference variant=herl"),  # the one variant the smoke sweep ran
        (r"--output docs/", f"--output {tmp}/docs/"),
        (r"/ckpt/[\w.-]+", str(model)),
        (r"/data/[\w.-]+\.jsonl", str(train_file)),
        (r"=smollm2-135m-instruct\b", f"={model}"),
        (r"(?<![\w/])runs/", f"{tmp}/runs/"),
        (r"\[?--limit \d+\]?", "--limit 1"),
        (r"(--grid [\w.]+=[^,\s]+)\S*", r"\1"),
    ]


# A training command of an offline baseline (configs/*.py:...sft... or dpo): its tiny rows of that kind, and the
# smoke batch of 2 examples (DPO: 2 pairs) as one optimizer step, rows that fit the tiny model; these replace the command's and SMOKE_TRAIN_FLAGS'
# flags of the same keys.
OFFLINE_CONFIG = re.compile(r"--config \S+[:,](sft|dpo)(?:,|\s|$)")


def offline_smoke_flags(command: str, offline_files: dict[str, Path]) -> list[str]:
    match = OFFLINE_CONFIG.search(command)
    if not match:
        return []
    rows = 2 * (2 if match[1] == "dpo" else 1)
    return [f"--config.data.train_files={offline_files[match[1]]}", f"--config.train.ppo.mini_batch_size={rows}",
            "--config.train.ppo.micro_batch_size=2", "--config.train.objective.max_length=256"]


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


def smoke_form(command: str, subs: list[tuple[str, str]], model: Path,
               offline_files: dict[str, Path] | None = None) -> list[str]:
    """The argv that runs `command` here: SUBSTITUTIONS, then the smoke flags of its kind."""
    for pattern, replacement in subs:
        command = re.sub(pattern, replacement, command)
    argv = shlex.split(command)
    argv[0] = sys.executable
    if argv[1] == "-m" and argv[2] in TRAINING_CONFIG:
        offline = offline_smoke_flags(command, offline_files or {})
        replaced = {flag.split("=")[0] for flag in offline}  # a config flag given twice: the first one wins

        def kept(flags):
            return [flag for flag in flags if flag.split("=")[0] not in replaced]

        argv = kept(argv) + [f"--config.model.source={model}", *kept(SMOKE_TRAIN_FLAGS), *offline]
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
    prompts = [f"Say something about topic {i}." for i in range(4)]
    offline_files = {
        "sft": write_jsonl(tmp / "sft.jsonl", [{"prompt": p, "response": "A short reply."} for p in prompts]),
        "dpo": write_jsonl(tmp / "dpo.jsonl", [{"prompt": p, "chosen": "A short reply.", "rejected": "No."}
                                               for p in prompts]),
    }
    return substitutions(tmp, tiny_checkpoint, hir_files[0]), tiny_checkpoint, offline_files


@pytest.mark.parametrize("where, command", TO_RUN, ids=[where for where, _ in TO_RUN])
def test_documented_command_runs(where, command, workspace, subprocess_env):
    subs, model, offline_files = workspace
    argv = smoke_form(command, subs, model, offline_files)
    result = run(argv, subprocess_env, timeout=600)
    assert result.returncode == 0, f"{where}: {shlex.join(argv)}\n{result.stderr[-3000:]}"
