"""The learner: the device-side policy update and its host driver. The train section's config (config: loss,
optimizer, PPO mini/micro-batches, the learner's static settings), the jitted token log-probs (logprobs), the
loss (loss), the optimizer (optim), the learner's jitted log-probs and optimizer step (learner), and the PPO loop
on the host (micro_batches, update) with its seeds (seeds: a step's seeds, the update's shuffling). Exported
here: what a policy update needs.

Names load with their module when first used (herl_jax.lazy): the config module needs no JAX.
"""

from herl_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "config": ("LearnerConfig", "LossConfig", "OptimConfig", "PPOConfig", "default_config"),
    "learner": ("Learner", "TrainState"),
    "logprobs": ("token_logprobs",),
    "loss": ("Normalizer", "mini_batch_normalizer", "policy_loss"),
    "optim": ("make_optimizer",),
    "update": ("update_policy",),
})
