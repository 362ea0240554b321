"""Device-side training code: chunked per-token log-probs and the HeRL policy loss."""

from herl_jax.training.logprobs import token_logprobs
from herl_jax.training.loss import LossConfig, Normalizer, mini_batch_normalizer, policy_loss

__all__ = ["LossConfig", "Normalizer", "mini_batch_normalizer", "policy_loss", "token_logprobs"]
