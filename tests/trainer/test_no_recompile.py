"""Across trainer steps of fixed shapes, nothing compiles after the first step: the sampler (continuous
batching, the default), the scorer and the update all reuse their programs (issue 15: recompilation is a
bug). Counted with jax.monitoring, which reports every trace, lowering and compile."""

from __future__ import annotations

import contextlib
import io

import jax

from herl_jax.training.trainer import Trainer
from tests.trainer.conftest import config_arg
from tests.trainer.tiny_config import get_config


def test_steps_after_the_first_compile_nothing(tiny_checkpoint, hir_files, tmp_path):
    c = get_config(config_arg(tiny_checkpoint, hir_files, "hir"))
    c.trainer.update(steps=4, validate_every=1, checkpoint_every=1)
    assert c.rollout.decode_slots > 0 and c.revision.decode_slots > 0  # the continuous sampler
    events: list[list[str]] = [[]]  # compile events: the trainer's build, then one list per step

    def count(event: str, duration: float, **_) -> None:
        if event.startswith("/jax/core/compile/"):
            events[-1].append(event)

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            trainer = Trainer(c, tmp_path / "run")
            try:
                steps = []
                for _ in range(4):  # rollouts, revisions, scoring, update, validation and a checkpoint each
                    events.append([])
                    steps.append(trainer._train_one_step())
            finally:
                trainer.close()
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    # Every step revised the same number of prompts, so every step had the first one's shapes.
    assert steps[0]["revision/rate"] > 0 and len({m["revision/rate"] for m in steps}) == 1
    first, later = events[1], events[2:]
    assert first, "the listener saw no compile in the first step"
    assert [len(e) for e in later] == [0, 0, 0], f"compile events in steps 2-4: {later}"
