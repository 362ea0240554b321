"""Tiny models and learners shared by the train-step tests (built once: compiling is the slow part)."""

import pytest

from herl_jax.learner import Learner
from tests.training.tiny import STEP, random_batch, sgd_recording_gradient, tiny_model


@pytest.fixture(scope="session")
def model():
    return tiny_model()


@pytest.fixture(scope="session")
def learner(model):
    """fp32, recording SGD; splits each mini-batch into micro-batches of 2 rows (STEP)."""
    return Learner(model, sgd_recording_gradient(0.1), STEP)


@pytest.fixture(scope="session")
def batch():
    return random_batch(seed=1, n=7, batch_size=8)  # row 3 a revision, row 7 padding
