"""Device-side training code: chunked per-token log-probs, the HeRL policy loss, the jitted train
step, and the host-side PPO update loop that drives it."""

from herl_jax.training.config import default_config
from herl_jax.training.logprobs import token_logprobs
from herl_jax.training.loss import LossConfig, Normalizer, mini_batch_normalizer, policy_loss
from herl_jax.training.optim import make_optimizer
from herl_jax.training.learner import Learner, StepConfig, TrainState
from herl_jax.training.update import update_policy

__all__ = [
    "Learner",
    "LossConfig",
    "Normalizer",
    "StepConfig",
    "TrainState",
    "default_config",
    "make_optimizer",
    "mini_batch_normalizer",
    "policy_loss",
    "token_logprobs",
    "update_policy",
]
