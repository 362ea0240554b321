"""Issue 13 item 5: a run that stops learning stops as failed, through the real `train` on the tiny model.

Non-finite: `train.optim.lr=1e30` passes validation (finite, > 0); the first update moves the parameters to
~1e30, after which every gradient norm is NaN. Those updates must not be applied (the checkpointed state stays
the step-1 state bit for bit, read back with orbax itself), are counted in `train/skipped_nonfinite`, and after
`trainer.max_nonfinite_steps` in a row the run exits 1 in one line, without FINISHED or an export.
Empty: a judge nobody answers under `unscored="drop"` drops every sample; the run exits 1 with the reason.
Issue 27 item 4: a failed run stays failed. The same command again is refused in one line (nothing trains);
`--retry_failed` resumes from the newest checkpoint with the counts in a row it saved, so the same fault fails
again at the same step instead of finishing; launch/sweep.py and the report show the run as failed."""

from __future__ import annotations

import importlib.util
import json
import sys

import jax
import numpy as np
import pytest

from herl_jax.reporting.runs import read_run
from tests.cli.helpers import PROGRESS, REPO, assert_one_line_error, run
from tests.cli.judged_config import KEY_ENV
from tests.trainer import conftest as trainer_fixtures
from tests.trainer.conftest import config_arg
from tests.trainer.helpers import checkpoint_steps, read_metrics

TRAIN = ["-m", "herl_jax.train"]
rar_files = trainer_fixtures.rar_files
REFUSED = "stopped as failed at step"


def _load_sweep():
    spec = importlib.util.spec_from_file_location("launch_sweep_health", REPO / "launch" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _checkpoint_metadata(workdir, step: int) -> dict:
    import orbax.checkpoint as ocp

    with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as checkpointer:
        return checkpointer.restore(workdir / "checkpoints" / str(step) / "metadata")


def _assert_failed_and_untouched(workdir, step: int, needle: str, checkpoints: list[int], steps_logged: list[int]):
    """WORKDIR/FAILED names `step` and the reason; nothing past the failure was saved, finished or exported."""
    failure = json.loads((workdir / "FAILED").read_text())
    assert failure["step"] == step and needle in failure["reason"], failure
    assert checkpoint_steps(workdir) == checkpoints
    assert [m["step"] for m in read_metrics(workdir)] == steps_logged
    assert not (workdir / "FINISHED").exists() and not (workdir / "export").exists()
    assert read_run(workdir).status == "failed"  # herl_jax.report's status


def _restore_state(workdir, step: int) -> list[np.ndarray]:
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(workdir / "checkpoints" / str(step) / "state")
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_nonfinite_updates_are_skipped_counted_and_stop_the_run(tmp_path, subprocess_env, tiny_checkpoint,
                                                                hir_files):
    workdir = tmp_path / "w"
    command = [*TRAIN, "--config", f"tests/trainer/tiny_config.py:{config_arg(tiny_checkpoint, hir_files, 'hir')}",
               "--workdir", str(workdir), "--config.train.optim.lr=1e30", "--config.trainer.steps=8",
               "--config.trainer.validate_every=0", "--config.trainer.keep_checkpoints=5"]
    result = run(command, subprocess_env)
    assert_one_line_error(result, "trainer.max_nonfinite_steps=3", status=1, also=PROGRESS)
    assert "step 4:" in result.stderr  # numbered as metrics.jsonl numbers it

    lines = read_metrics(workdir)
    assert [m["step"] for m in lines] == [1, 2, 3, 4]
    assert lines[0]["train/skipped_nonfinite"] == 0 and np.isfinite(lines[0]["train/grad_norm"])
    for m in lines[1:]:
        assert m["train/skipped_nonfinite"] == 1
        assert not (np.isfinite(m["train/loss"]) and np.isfinite(m["train/grad_norm"]))
    assert not (workdir / "FINISHED").exists() and not (workdir / "export").exists()

    assert checkpoint_steps(workdir) == [1, 2, 3]  # step 4 stopped the run before its save
    after_step_1 = _restore_state(workdir, 1)
    assert max(float(np.abs(x).max()) for x in after_step_1) > 1e20  # the huge update was applied ...
    for step in (2, 3):  # ... and none after it: params, optimizer state and step counter unchanged
        for kept, skipped in zip(after_step_1, _restore_state(workdir, step), strict=True):
            assert np.array_equal(kept, skipped)
    # Checkpoint 3 holds the counts in a row after steps 2 and 3 (both skipped), read back with orbax itself.
    assert _checkpoint_metadata(workdir, 3)["health"] == {"nonfinite_in_a_row": 2, "empty_in_a_row": 0}
    _assert_failed_and_untouched(workdir, 4, "trainer.max_nonfinite_steps=3", [1, 2, 3], [1, 2, 3, 4])

    # The same command again (a second sweep pass did this): refused in one line, nothing trains or changes.
    again = run(command, subprocess_env)
    line = assert_one_line_error(again, f"{REFUSED} 4", status=1)
    assert str(workdir / "FAILED") in line and "--retry_failed" in line and "max_nonfinite_steps=3" in line
    _assert_failed_and_untouched(workdir, 4, "trainer.max_nonfinite_steps=3", [1, 2, 3], [1, 2, 3, 4])

    # Retried: resumed from checkpoint 3 with 2 skipped updates in a row, step 4 is the third again.
    retried = run([*command, "--retry_failed"], subprocess_env)
    assert_one_line_error(retried, "step 4: the loss or gradient norm was not finite in 3 steps in a row",
                          status=1, also=PROGRESS)
    assert "resumed from checkpoint 3" in retried.stderr
    _assert_failed_and_untouched(workdir, 4, "trainer.max_nonfinite_steps=3", [1, 2, 3], [1, 2, 3, 4])


def test_the_sweep_shows_a_failed_run_as_failed_and_launches_it_only_when_retried(tmp_path, capsys):
    """A workdir the trainer marked failed (WORKDIR/FAILED, written by run_outcome.record_failure): the sweep's
    local and SLURM modes skip it and say why, exit 1; with `-- --retry_failed` it is launched again."""
    from herl_jax.training.run_outcome import Failure, record_failure

    sweep = _load_sweep()
    root = tmp_path / "sweep"
    grid = ["--config", str(REPO / "configs" / "demo.py"), "--root", str(root), "--grid", "herl.alpha=0.1"]
    (root / "alpha=0.1").mkdir(parents=True)
    record_failure(root / "alpha=0.1", Failure(4, "the loss or gradient norm was not finite in 3 steps in a row"))

    assert sweep.main([*grid, "--trainer-cmd", "/nonexistent/herl/trainer"]) == 1  # nothing launched
    out = capsys.readouterr().out
    assert "1 runs validated (0 already finished, 1 failed)" in out
    assert "failed (step 4: the loss or gradient norm was not finite in 3 steps in a row; add `-- --retry_failed`" \
        in out
    assert sweep.main([*grid, "--mode", "slurm"]) == 0
    assert "nothing to submit" in capsys.readouterr().out and not (root / "sweep.sbatch").exists()
    assert sweep.main([*grid, "--dry-run", "--", "--retry_failed"]) == 0
    command = capsys.readouterr().out.splitlines()[-1]
    assert not command.startswith("#") and command.endswith("--retry_failed --config.herl.alpha=0.1 "
                                                            "--config.trainer.run_name=alpha=0.1")


@pytest.mark.parametrize("flags, needle, retry_needle", [
    # Retried with the judge still down: resumed from checkpoint 1, the one step it runs has nothing either.
    (["--config.trainer.steps=2"], "none of this run's 2 steps had a trainable group",
     "none of this run's 1 steps had a trainable group"),
    (["--config.trainer.steps=5", "--config.trainer.max_empty_steps=2"], "trainer.max_empty_steps=2", None),
])
def test_a_run_whose_samples_are_all_dropped_fails(tmp_path, subprocess_env, tiny_checkpoint, rar_files, flags,
                                                    needle, retry_needle):
    workdir = tmp_path / "w"
    env = dict(subprocess_env, **{KEY_ENV: "test-key"})
    command = [*TRAIN, "--config", f"tests/cli/judged_config.py:{config_arg(tiny_checkpoint, rar_files, 'rar')}",
               "--workdir", str(workdir), "--config.trainer.validate_every=0", *flags]
    result = run(command, env)
    line = assert_one_line_error(result, needle, status=1, also=PROGRESS)
    assert line.startswith("error: step 2:")
    lines = read_metrics(workdir)
    assert [m["step"] for m in lines] == [1, 2]
    assert all(m["samples/dropped"] > 0 and m["samples/train_rows"] == 0 for m in lines)
    # The warnings number the steps as metrics.jsonl does.
    assert "step 1: no trainable groups" in result.stderr and "step 2: no trainable groups" in result.stderr
    # Step 2 stopped the run before its save (the tiny config saves every step).
    _assert_failed_and_untouched(workdir, 2, needle, [1], [1, 2])

    assert_one_line_error(run(command, env), f"{REFUSED} 2", status=1)  # before this fix: exit 0, FINISHED
    _assert_failed_and_untouched(workdir, 2, needle, [1], [1, 2])
    if retry_needle:
        retried = run([*command, "--retry_failed"], env)
        assert_one_line_error(retried, f"step 2: {retry_needle}", status=1, also=PROGRESS)
        _assert_failed_and_untouched(workdir, 2, retry_needle, [1], [1, 2])
