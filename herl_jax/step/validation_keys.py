"""The metric names of the held-out validation: `RLStep.held_out` logs them under these keys, and the trainer's
best export, the report and the sweep's status table read them back from metrics.jsonl. No JAX here, so the
readers load without it."""

VALIDATION_REWARD = "validation/reward_mean"  # mean reward of the scored greedy replies
VALIDATION_SUCCESS = "validation/success_rate"  # share of them whose reward reaches the success threshold
VALIDATION_DROPPED = "validation/dropped"  # replies left unscored (a rubric item dropped), counted apart
