"""Training: the run config (run_config), one RL step's host phases and sampling (phases, sample_and_score,
held_out, rl_step), the learner (learner: jitted log-probs and optimizer step; micro_batches, update: the PPO
loop on the host), and the trainer loop with its checkpoints, logs and health checks (trainer). Exported here:
what a policy update needs (token_logprobs, the loss, the optimizer, Learner, update_policy)."""

from herl_jax.training.config import LearnerConfig, LossConfig, OptimConfig, PPOConfig, default_config
from herl_jax.training.logprobs import token_logprobs
from herl_jax.training.loss import Normalizer, mini_batch_normalizer, policy_loss
from herl_jax.training.optim import make_optimizer
from herl_jax.training.learner import Learner, TrainState
from herl_jax.training.update import update_policy

__all__ = [
    "Learner",
    "LearnerConfig",
    "LossConfig",
    "Normalizer",
    "OptimConfig",
    "PPOConfig",
    "TrainState",
    "default_config",
    "make_optimizer",
    "mini_batch_normalizer",
    "policy_loss",
    "token_logprobs",
    "update_policy",
]
