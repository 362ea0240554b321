"""The SFT and DPO baselines through the trainer (issue 26 item 2): a 2-step run of each through the train CLI on a
tiny random model (metrics, validation, checkpoints, export), resume equivalence, and learning on a fixed batch."""

from __future__ import annotations

import math
import shutil

import pytest

from herl_jax.training.trainer import FINISHED, Trainer
from tests.cli.helpers import run
from tests.trainer.conftest import TOPICS, config_arg, write_jsonl
from tests.trainer.helpers import VALIDATION_KEYS, assert_trees_equal, checkpoint_steps, read_metrics
from tests.trainer.tiny_config import get_config

KIND_KEYS = {"sft": ("train/nll",),
             "dpo": ("train/reward_margin", "train/reward_accuracy", "train/reward_chosen", "train/reward_rejected")}


@pytest.fixture(scope="module")
def offline_files(tmp_path_factory, hir_files):
    """kind -> (train file of that kind, the hir validation file)."""
    d = tmp_path_factory.mktemp("offline")
    sft = [{"id": f"sft-{i}", "prompt": f"Say something about {t}.", "response": f"{t.capitalize()} are lovely."}
           for i, t in enumerate(TOPICS[:8])]
    dpo = [{"id": f"dpo-{i}", "prompt": f"Say something about {t}.", "chosen": f"{t.capitalize()} are lovely.",
            "rejected": "No."} for i, t in enumerate(TOPICS[:8])]
    return {"sft": (write_jsonl(d / "sft.jsonl", sft), hir_files[1]),
            "dpo": (write_jsonl(d / "dpo.jsonl", dpo), hir_files[1])}


def config_for(kind, tiny_checkpoint, offline_files, steps=2):
    c = get_config(config_arg(tiny_checkpoint, offline_files[kind], kind))
    c.trainer.steps = steps
    return c


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_two_steps_through_the_train_cli(kind, tiny_checkpoint, offline_files, subprocess_env, tmp_path):
    workdir = tmp_path / kind
    arg = config_arg(tiny_checkpoint, offline_files[kind], kind)
    result = run(["-m", "herl_jax.train", "--config", f"tests/trainer/tiny_config.py:{arg}", "--workdir",
                  str(workdir)], subprocess_env)
    assert result.returncode == 0, result.stderr[-3000:]

    lines = read_metrics(workdir)
    assert [m["step"] for m in lines] == [1, 2]
    for m in lines:
        for key in ("train/loss", "train/grad_norm", *KIND_KEYS[kind]):
            assert math.isfinite(m[key]), (key, m)
        assert m["samples/train_rows"] == 2 * (2 if kind == "dpo" else 1)
        assert m["train/skipped_nonfinite"] == 0 and m["train/grad_norm"] > 0
        assert m["time/step"] >= m["time/update"] > 0
    assert all(k in lines[1] for k in VALIDATION_KEYS)  # validate_every=2, on the hir validation file
    assert 0.0 <= lines[1]["validation/reward_mean"] <= 1.0
    if kind == "dpo":  # the first step's policy is the reference: every margin 0, the loss log 2
        assert lines[0]["train/reward_margin"] == pytest.approx(0.0, abs=1e-6)
        assert lines[0]["train/loss"] == pytest.approx(math.log(2.0), rel=1e-5)
    assert checkpoint_steps(workdir) == [1, 2]
    assert (workdir / FINISHED).read_text().strip() == "2"
    assert (workdir / "export" / "config.json").is_file()
    # Resuming is the Trainer's, the same for every objective: test_resume_reproduces_the_uninterrupted_run.


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_resume_reproduces_the_uninterrupted_run(kind, tiny_checkpoint, offline_files, tmp_path):
    """2 steps, then 1 more after a restart == 3 steps straight (DPO: the reference stays the initial policy)."""
    Trainer(config_for(kind, tiny_checkpoint, offline_files, 2), tmp_path / "resumed").run()
    resumed = Trainer(config_for(kind, tiny_checkpoint, offline_files, 3), tmp_path / "resumed")
    assert resumed.step == 2
    resumed.run()
    straight = Trainer(config_for(kind, tiny_checkpoint, offline_files, 3), tmp_path / "straight")
    straight.run()
    assert_trees_equal(resumed.state, straight.state)
    assert [m["train/loss"] for m in read_metrics(tmp_path / "resumed")] == \
        [m["train/loss"] for m in read_metrics(tmp_path / "straight")]


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_the_loss_falls_on_a_fixed_batch(kind, tiny_checkpoint, offline_files, tmp_path):
    """Five optimizer steps on the same batch: the SFT NLL falls; the DPO margin grows from 0 and the loss falls
    below log 2."""
    trainer = Trainer(config_for(kind, tiny_checkpoint, offline_files, 5), tmp_path / "fixed")
    batch = next(trainer.batches)
    history = []
    for step in range(5):
        trainer.state, metrics, _ = trainer.train_step(trainer.state, batch, step)
        history.append(metrics)
    trainer.close()
    losses = [m["train/loss"] for m in history]
    assert losses[-1] < losses[0] - 0.05, losses
    if kind == "dpo":
        margins = [m["train/reward_margin"] for m in history]
        assert margins[0] == pytest.approx(0.0, abs=1e-6) and margins[-1] > 0.05, margins
        assert losses[-1] < math.log(2.0)
    shutil.rmtree(tmp_path / "fixed")
