"""herl-jax: HeRL (hindsight-experience guided RL with rubric rewards) for LLMs in JAX/Flax."""

__version__ = "0.1.0"
