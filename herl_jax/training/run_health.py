"""When a run must stop as failed rather than train on: steps that learn nothing, in a row.

- Non-finite: an optimizer update whose loss or gradient norm is not finite is skipped on the device (the
  state stays the previous one, bit for bit; herl_jax.learner.learner) and counted in the step's
  `train/skipped_nonfinite`. After `trainer.max_nonfinite_steps` RL steps in a row with a skipped update,
  the run stops.
- Empty: a step with no trainable group (every prompt skipped or every sample dropped, e.g. the judge down)
  updates nothing. After `trainer.max_empty_steps` such steps in a row, or at the run's last step when every
  step it ran (since it started or resumed) was empty, the run stops.

The counts in a row are part of the checkpoint (`state_dict`), so a resumed run goes on counting where it
stopped. A stopped run raises `TrainingHalted` (one line on the command line, exit 1) before the step that
stopped it is saved: it writes no FINISHED marker and exports nothing, and the trainer records it as failed
(run_outcome.py).
"""

from __future__ import annotations

from herl_jax.errors import UserError


class TrainingHalted(UserError, RuntimeError):
    """The run stopped as failed at `step`: it was not learning (see the module docstring)."""

    def __init__(self, step: int, reason: str):
        super().__init__(f"step {step}: {reason}")
        self.step, self.reason = step, reason


class RunHealth:
    """Counts the steps in a row that skipped an update or had nothing to train on; raises when too many."""

    def __init__(self, max_nonfinite_steps: int, max_empty_steps: int):
        self.max_nonfinite, self.max_empty = max_nonfinite_steps, max_empty_steps
        self.nonfinite_in_a_row = self.empty_in_a_row = 0
        self.steps_seen = 0  # by this process: since the run started or resumed

    def state_dict(self) -> dict[str, int]:
        """The counts in a row, for a checkpoint."""
        return {"nonfinite_in_a_row": self.nonfinite_in_a_row, "empty_in_a_row": self.empty_in_a_row}

    def restore(self, state: dict[str, int]) -> None:
        """Goes on counting from a `state_dict()` (a checkpoint from before it was saved there: from zero)."""
        self.nonfinite_in_a_row = int(state.get("nonfinite_in_a_row", 0))
        self.empty_in_a_row = int(state.get("empty_in_a_row", 0))

    def observe(self, step: int, metrics: dict[str, float], last: bool = False) -> None:
        """Step `step` (numbered from 1, as in metrics.jsonl) ended with `metrics`; `last`: it is the run's last
        step. Raises TrainingHalted."""
        self.steps_seen += 1
        if "train/skipped_nonfinite" not in metrics:  # no update: nothing trainable
            self.empty_in_a_row += 1
            if self.empty_in_a_row >= self.max_empty:
                raise TrainingHalted(step, (
                    f"no trainable group in the last {self.empty_in_a_row} steps (trainer.max_empty_steps="
                    f"{self.max_empty}): every prompt skipped or every sample dropped; see samples/dropped, "
                    "groups/skipped and the judge metrics in metrics.jsonl"))
            if last and self.empty_in_a_row >= self.steps_seen:
                raise TrainingHalted(step, (
                    f"none of this run's {self.steps_seen} steps had a trainable group: every prompt skipped or "
                    "every sample dropped; see samples/dropped, groups/skipped and the judge metrics in "
                    "metrics.jsonl"))
            return
        self.empty_in_a_row = 0
        skipped = metrics["train/skipped_nonfinite"]
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if skipped else 0
        if self.nonfinite_in_a_row >= self.max_nonfinite:
            raise TrainingHalted(step, (
                f"the loss or gradient norm was not finite in {self.nonfinite_in_a_row} steps in a row (trainer."
                f"max_nonfinite_steps={self.max_nonfinite}; train/loss={metrics.get('train/loss')}, "
                f"train/grad_norm={metrics.get('train/grad_norm')}); none of those updates was applied"))
