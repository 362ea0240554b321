"""Shared test setup: CPU only, float32 matmuls at full precision, quiet logs."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests never touch a model hub

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
