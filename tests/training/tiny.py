"""Tiny random decoders and random training records shared by the train-step tests."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from herl_jax.herl import TrainingRecord, collate
from herl_jax.models import Decoder, ModelConfig
from herl_jax.learner import LearnerConfig, LossConfig, mini_batch_normalizer, policy_loss

TINY = ModelConfig(family="llama", vocab_size=32, hidden_size=16, intermediate_size=32, num_layers=2,
                   num_heads=2, num_kv_heads=1, head_dim=8)
PAD = 0

# Every loss term on: asymmetric clip, dual clip, KL and entropy bonus; temperature ≠ 1.
LOSS = LossConfig(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=3.0, kl_coef=0.05, entropy_coef=0.01)
STEP = LearnerConfig(LOSS, micro_batch_size=2, temperature=0.7, logprob_chunk_size=8)
BUCKET = 16  # random_batch's T is a multiple of it; the update's bucket_size, as the trainer's sequence_bucket


def sgd_recording_gradient(lr: float) -> optax.GradientTransformation:
    """Plain SGD whose optimizer state is the gradient it was last given, so a test can read it."""
    return optax.GradientTransformation(
        init=lambda params: jax.tree.map(jnp.zeros_like, params),
        update=lambda grads, state, params=None: (jax.tree.map(lambda g: -lr * g, grads), grads),
    )


def tiny_model(seed: int = 0, scale: float = 0.1, **changes) -> Decoder:
    """A TINY decoder (fields overridden by ``changes``) with N(0, scale) weights and unit norms.

    Weights come from numpy: jax.random's kernels take ~0.5 s each to compile on CPU.
    """
    model = Decoder(TINY.replace(**changes))  # zero weights, unit norm weights
    rng = np.random.default_rng(seed)
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(
        lambda p: p if np.all(np.asarray(p) == 1) else jnp.asarray(rng.normal(size=p.shape) * scale, p.dtype),
        params))
    return model


def random_records(seed: int, n: int, *, revision_rows=(3,), vocab: int = TINY.vocab_size,
                   max_context: int = 6, max_response: int = 8, with_sampler_logprobs: bool = True):
    """n records with ragged contexts / responses (token ids ≥ 1), advantages ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        context = rng.integers(1, vocab, size=rng.integers(1, max_context + 1))
        response = rng.integers(1, vocab, size=rng.integers(1, max_response + 1))
        sampler = -rng.uniform(0.5, 4.0, size=len(response)) if with_sampler_logprobs and i % 2 else None
        records.append(TrainingRecord(context, response, advantage=float(rng.normal()), reward=0.0,
                                      is_revision=i in revision_rows, sampler_logprobs=sampler))
    return records


def random_batch(seed: int, n: int, batch_size: int, **kwargs):
    """A collated batch of ``n`` random records padded to ``batch_size`` rows, T bucketed to ``BUCKET``."""
    return collate(random_records(seed, n, **kwargs), pad_id=PAD, bucket_size=BUCKET, batch_size=batch_size)


def full_width_loss(graphdef: nnx.GraphDef, batch, old_logprobs, ref_logprobs, step: LearnerConfig = STEP):
    """params -> (loss, metrics) of the whole batch in one direct forward: full-width fp32 logits [B, T, V],
    no micro-batches, no trimming, no LM-head chunks; the reference the learner's step is checked against."""
    jb = {k: jnp.asarray(v) for k, v in batch.items()}

    def loss(params):
        logits = nnx.merge(graphdef, params)(jb["input_ids"], jb["attention_mask"], jb["positions"])
        logp_all = jax.nn.log_softmax(logits / step.temperature, axis=-1)
        logp = jnp.take_along_axis(logp_all, jb["targets"][..., None], -1)[..., 0]
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1)
        norm = mini_batch_normalizer(jb["loss_mask"], jb["is_revision"])
        return policy_loss(logp, old_logprobs, jb["advantages"], jb["is_revision"], jb["loss_mask"], norm, step.loss,
                           ref_logprobs=ref_logprobs, entropy=entropy)

    return loss


COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/backend_compile_duration")


@contextlib.contextmanager
def compilations():
    """Yields a list that collects the compile events JAX reports while the block runs."""
    events = []

    def listener(event, duration, **kwargs):
        if event in COMPILE_EVENTS:
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
