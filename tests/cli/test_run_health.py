"""Issue 13 item 5: a run that stops learning stops as failed, through the real `train` on the tiny model.

Non-finite: `train.optim.lr=1e30` passes validation (finite, > 0); the first update moves the parameters to
~1e30, after which every gradient norm is NaN. Those updates must not be applied (the checkpointed state stays
the step-1 state bit for bit, read back with orbax itself), are counted in `train/skipped_nonfinite`, and after
`trainer.max_nonfinite_steps` in a row the run exits 1 in one line, without FINISHED or an export.
Empty: a judge nobody answers under `unscored="drop"` drops every sample; the run exits 1 with the reason."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from tests.cli.helpers import assert_one_line_error, run
from tests.cli.judged_config import KEY_ENV
from tests.trainer import conftest as trainer_fixtures
from tests.trainer.conftest import config_arg
from tests.trainer.helpers import checkpoint_steps, read_metrics

TRAIN = ["-m", "herl_jax.train"]
rar_files = trainer_fixtures.rar_files
PROGRESS = re.compile(r"^herl: ")  # the trainer's progress bar, beside the log records


def _restore_state(workdir, step: int) -> list[np.ndarray]:
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(workdir / "checkpoints" / str(step) / "state")
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_nonfinite_updates_are_skipped_counted_and_stop_the_run(tmp_path, subprocess_env, tiny_checkpoint,
                                                                hir_files):
    workdir = tmp_path / "w"
    result = run([*TRAIN, "--config", f"tests/trainer/tiny_config.py:{config_arg(tiny_checkpoint, hir_files, 'hir')}",
                  "--workdir", str(workdir), "--config.train.optim.lr=1e30", "--config.trainer.steps=8",
                  "--config.trainer.validate_every=0", "--config.trainer.keep_checkpoints=5"], subprocess_env)
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


@pytest.mark.parametrize("flags, needle", [
    (["--config.trainer.steps=2"], "none of this run's 2 steps had a trainable group"),
    (["--config.trainer.steps=5", "--config.trainer.max_empty_steps=2"], "trainer.max_empty_steps=2"),
])
def test_a_run_whose_samples_are_all_dropped_fails(tmp_path, subprocess_env, tiny_checkpoint, rar_files, flags,
                                                    needle):
    workdir = tmp_path / "w"
    env = dict(subprocess_env, **{KEY_ENV: "test-key"})
    result = run([*TRAIN, "--config", f"tests/cli/judged_config.py:{config_arg(tiny_checkpoint, rar_files, 'rar')}",
                  "--workdir", str(workdir), "--config.trainer.validate_every=0", *flags], env)
    line = assert_one_line_error(result, needle, status=1, also=PROGRESS)
    assert line.startswith("error: step 2:")
    lines = read_metrics(workdir)
    assert [m["step"] for m in lines] == [1, 2]
    assert all(m["samples/dropped"] > 0 and m["samples/train_rows"] == 0 for m in lines)
    # The warnings number the steps as metrics.jsonl does.
    assert "step 1: no trainable groups" in result.stderr and "step 2: no trainable groups" in result.stderr
    assert not (workdir / "FINISHED").exists() and not (workdir / "export").exists()
