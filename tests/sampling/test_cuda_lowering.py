"""The sampler's programs and the train step lower for the CUDA platform on a CPU-only machine, so errors
that only GPU lowering raises show in CI. (XLA attention, except where cuDNN's version check is stubbed:
cuDNN's kernel needs cuDNN present to trace.)"""

import re

import jax
import numpy as np
import optax
import pytest
from flax import nnx
from jax._src.cudnn import fused_attention_stablehlo

from herl_jax import parallel
from herl_jax.models.decoder import outside_layers
from herl_jax.sampling import slots as slot_programs
from herl_jax.learner import Learner
from herl_jax.learner.loss import Normalizer, mini_batch_normalizer
from tests.training.tiny import STEP, random_batch, tiny_model

CUDA = ("cuda",)
RULES = parallel.DEFAULT_RULES


def lowered_text(jitted, *args, **kwargs) -> str:
    return jitted.trace(*args, **kwargs).lower(lowering_platforms=CUDA).as_text()


def test_sampler_programs_lower_for_cuda():
    model = tiny_model(dtype="bfloat16", attention_impl="xla")
    graphdef, state = nnx.split(model)
    weights = slot_programs.decode_weights(state, mesh=None, rules=RULES)
    ids, mask = np.ones((2, 8), np.int32), np.ones((2, 8), np.int32)
    prompts = slot_programs.prefill(graphdef, state, weights, ids, mask, mesh=None, rules=RULES)
    assert "stablehlo" in lowered_text(slot_programs.prefill, graphdef, state, weights, ids, mask, mesh=None,
                                       rules=RULES)
    slots = slot_programs.empty_slots(cfg=model.cfg, num_slots=3, cache_len=24, max_new=16, pad_id=0, mesh=None,
                                      rules=RULES)
    settings = slot_programs.DrawSettings(1.0, 5, 0.9, (1,), 16)
    key = jax.random.key(0)
    dest, src = np.array([0, 1, 3], np.int32), np.array([0, 1, 0], np.int32)  # slot 3 of 3: unused
    for copy in (lowered_text(slot_programs.decode_head_weights, outside_layers(state), mesh=None, rules=RULES),
                 lowered_text(slot_programs.decode_layer_weights, state["layers"], np.int32(1), mesh=None,
                              rules=RULES)):
        assert "func.func public @main" in copy
    rows = lowered_text(slot_programs.refill_rows, slot_programs.without_keys_values(slots),
                        slot_programs.without_keys_values(prompts), dest, src, src, key, settings=settings,
                        mesh=None, rules=RULES)
    layer = lowered_text(slot_programs.refill_layer, slots.cache.k[0], slots.cache.v[0], prompts.cache.k[0],
                         prompts.cache.v[0], dest, src, mesh=None, rules=RULES)
    chunk = lowered_text(slot_programs.decode_chunk, graphdef, state, weights, slots, key, np.int32(1),
                         settings=settings, steps=4, window=16, mesh=None, rules=RULES)
    # The donated slots and cache buffers stay aliased to the outputs on the GPU program too.
    assert all("tf.aliasing_output" in text for text in (rows, layer, chunk))
    assert layer.count("tf.aliasing_output") == 2  # the layer's keys and values, written in place


def test_train_step_lowers_for_cuda():
    model = tiny_model(dtype="bfloat16", attention_impl="xla")
    learner = Learner(model, optax.adamw(1e-3), STEP)
    state = learner.init_state(model)
    batch = {k: np.asarray(v) for k, v in random_batch(0, 4, 4).items()}
    micro = {k: batch[k][: STEP.micro_batch_size] for k in
             ("input_ids", "attention_mask", "positions", "targets", "loss_mask", "advantages", "is_revision")}
    logprobs = np.zeros(micro["targets"].shape, np.float32)
    normalizer = Normalizer(*(np.float32(x) for x in mini_batch_normalizer(
        batch["loss_mask"], batch["is_revision"], num_micro_batches=2)))
    params = learner._cast(state.params)  # the step's programs, as Learner.optimizer_step runs them
    grads = learner._zeros_like(state.params)
    assert "stablehlo" in lowered_text(learner._accumulate, params, grads, micro, logprobs, logprobs, normalizer)
    assert "stablehlo" in lowered_text(learner._apply, state, grads, np.float32(0.0))


@pytest.fixture
def cudnn_version(monkeypatch):
    """Lowering cuDNN attention asks only for cuDNN's version (9.10 here); nothing runs."""
    monkeypatch.setattr(fused_attention_stablehlo, "check_cudnn_version", lambda: 91000)


def cudnn_calls(text: str) -> tuple[set[str], set[str]]:
    """The cuDNN attention custom calls in lowered text, and their mask types."""
    calls = set(re.findall(r"custom_call @__cudnn\$(\w+)", text))
    return calls, set(re.findall(r"mask_type\\22: \\22(\w+)", text))


def test_cudnn_training_attention_is_causal_with_lengths_and_no_bias(cudnn_version):
    """The learner's right-padded forwards (log-probs, and the micro-batch's forward and backward) reach
    cuDNN with a causal mask type and row lengths, no dense mask as a bias; the sampler's left-padded
    prefill keeps the dense mask (a bias, no mask type)."""
    model = tiny_model(dtype="bfloat16", attention_impl="cudnn")
    learner = Learner(model, optax.adamw(1e-3), STEP)
    state = learner.init_state(model)
    batch = {k: np.asarray(v) for k, v in random_batch(0, 4, 4).items()}
    micro = {k: batch[k][: STEP.micro_batch_size] for k in
             ("input_ids", "attention_mask", "positions", "targets", "loss_mask", "advantages", "is_revision")}
    logprobs = np.zeros(micro["targets"].shape, np.float32)
    normalizer = Normalizer(*(np.float32(x) for x in mini_batch_normalizer(
        batch["loss_mask"], batch["is_revision"], num_micro_batches=2)))
    params, grads = learner._cast(state.params), learner._zeros_like(state.params)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "positions", "targets")}
    assert cudnn_calls(lowered_text(learner._compute_logprobs, params, inputs)) == ({"fmhaSoftmax"}, {"PADDING_CAUSAL"})
    step = lowered_text(learner._accumulate, params, grads, micro, logprobs, logprobs, normalizer)
    assert cudnn_calls(step) == ({"fmhaSoftmax", "fmhaSoftmaxBackward"}, {"PADDING_CAUSAL"})

    graphdef, state = nnx.split(model)
    weights = slot_programs.decode_weights(state, mesh=None, rules=RULES)
    ids, mask = np.ones((2, 8), np.int32), np.ones((2, 8), np.int32)
    prefill = lowered_text(slot_programs.prefill, graphdef, state, weights, ids, mask, mesh=None, rules=RULES)
    assert cudnn_calls(prefill) == ({"fmhaScaleBiasSoftmax"}, {"NO_MASK"})
