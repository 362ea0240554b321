"""Files a run writes are its own: a symbolic link planted in a workdir (the lock, config.json, FINISHED,
metrics.jsonl) or a `--checkpoint` label that climbs out of `--output` is refused in one line before anything
loads, and the file the link points at is left as it was. Real CLIs, real links."""

from __future__ import annotations

import pytest

from tests.cli.helpers import assert_one_line_error, run
from tests.trainer.conftest import config_arg

TINY = "tests/trainer/tiny_config.py"
TRAIN, EVALUATE = (["-m", f"herl_jax.{name}"] for name in ("train", "evaluate"))
VICTIM = "the victim's own file\n"


@pytest.fixture(scope="module")
def tiny_config(tiny_checkpoint, hir_files) -> str:
    return f"{TINY}:{config_arg(tiny_checkpoint, hir_files, 'hir')}"


@pytest.mark.parametrize("name", ["herl.lock", "config.json", "FINISHED", "metrics.jsonl"])
def test_a_run_refuses_a_link_in_its_workdir_and_leaves_its_target_alone(tmp_path, subprocess_env, tiny_config,
                                                                          name):
    victim, workdir = tmp_path / "victim.txt", tmp_path / "w"
    victim.write_text(VICTIM)
    workdir.mkdir()
    (workdir / name).symlink_to(victim)
    result = run([*TRAIN, "--config", tiny_config, "--workdir", str(workdir)], subprocess_env)
    line = assert_one_line_error(result, f"{workdir / name} is a symbolic link", 1)
    assert str(victim) in line
    assert victim.read_text() == VICTIM and (workdir / name).is_symlink()


@pytest.mark.parametrize("label", ["..", "."])
def test_evaluate_refuses_a_checkpoint_label_outside_its_output_folder(tmp_path, subprocess_env, label):
    output = tmp_path / "out"
    result = run([*EVALUATE, "--output", str(output), "--benchmarks", "ifeval", "--limit", "1",
                  "--checkpoint", f"{label}=/nonexistent/herl-ckpt"], subprocess_env)
    assert_one_line_error(result, f"the checkpoint label {label!r} is not a plain name", 1)
    assert not output.exists()
