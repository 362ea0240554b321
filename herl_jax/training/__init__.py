"""Training: the run config (run_config; the train section's dataclasses in config), one RL step's host
phases and sampling (phases, sample_and_score, held_out, rl_step), the learner (learner: jitted log-probs and
optimizer step; micro_batches, update: the PPO loop on the host), and the trainer loop with its checkpoints,
logs and health checks (trainer). Exported here: what a policy update needs (the train section's config,
token_logprobs, the loss, the optimizer, Learner, update_policy).

Names load with their module when first used (herl_jax.lazy): the config modules need no JAX.
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
