"""Our decoder against transformers (PyTorch CPU) on tiny random checkpoints of each family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from herl_jax.models import Decoder, KVCache, ModelConfig, export_hf, load_model
from tests.models.hf_reference import FAMILIES, left_padded_batch, make_checkpoint, reference_logits

ROWS = [[5, 17, 3, 88, 41, 9, 60, 2, 33, 71, 12], [7, 7, 19, 50], [90, 1, 64, 28, 45, 13, 8]]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def checkpoint(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    hf_model = make_checkpoint(request.param, directory)
    return request.param, directory, hf_model


def _real_token_error(ours: np.ndarray, mask: np.ndarray, refs: list[np.ndarray]) -> float:
    return max(np.abs(ours[i][mask[i] == 1] - ref).max() for i, ref in enumerate(refs))


def test_left_padded_logits_match_transformers(checkpoint):
    family, directory, hf_model = checkpoint
    model = load_model(directory)
    assert model.cfg.family == family
    ids, mask = left_padded_batch(ROWS)
    logits = np.asarray(model(jnp.asarray(ids), jnp.asarray(mask)))
    assert logits.shape == (len(ROWS), ids.shape[1], hf_model.config.vocab_size)
    assert _real_token_error(logits, mask, reference_logits(hf_model, ROWS)) <= 1e-4


def test_kv_cache_prefill_then_decode_matches_transformers(checkpoint):
    """Prefill a left-padded prompt, then feed the remaining tokens one at a time through the cache (the
    layers unrolled on per-layer weights and cache buffers, as the sampler runs them)."""
    _, directory, hf_model = checkpoint
    model = load_model(directory)
    prompts = [row[:-3] for row in ROWS]
    ids, mask = left_padded_batch(prompts)
    cache = KVCache.empty(model.cfg, batch=len(ROWS), max_len=ids.shape[1] + 3)
    layers = model.layer_states()
    assert len(cache.k) == len(layers) == model.cfg.num_layers
    step = jax.jit(lambda m, i, a, c, layers: m(i, a, cache=c, layers=layers))
    logits, cache = step(model, ids, mask, cache, layers)
    outputs = [np.asarray(logits)]
    for t in range(3):
        token = np.array([[row[-3 + t]] for row in ROWS], np.int32)
        logits, cache = step(model, token, np.ones_like(token), cache, layers)
        outputs.append(np.asarray(logits))
    ours = np.concatenate(outputs, axis=1)
    full_mask = np.concatenate([mask, np.ones((len(ROWS), 3), np.int32)], axis=1)
    assert _real_token_error(ours, full_mask, reference_logits(hf_model, ROWS)) <= 1e-4
    np.testing.assert_array_equal(np.asarray(cache.lengths), [len(r) for r in ROWS])


def test_export_round_trip_loads_in_transformers(checkpoint, tmp_path):
    """Export our params (sharded, to exercise the index) and load them with transformers."""
    _, directory, hf_model = checkpoint
    model = load_model(directory)
    export_hf(model, tmp_path, max_shard_bytes=20_000)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32)
    assert type(reloaded) is type(hf_model)
    for ref, got in zip(reference_logits(hf_model, ROWS), reference_logits(reloaded, ROWS)):
        np.testing.assert_allclose(got, ref, atol=1e-5)
    again = load_model(tmp_path)  # and our own loader reads the sharded export back exactly
    ids, mask = left_padded_batch(ROWS)
    np.testing.assert_array_equal(np.asarray(again(ids, mask)), np.asarray(model(ids, mask)))


def test_bfloat16_compute_tracks_float32(checkpoint):
    _, directory, _ = checkpoint
    ids, mask = left_padded_batch(ROWS)
    f32 = np.asarray(load_model(directory)(ids, mask))
    bf16_model = load_model(directory, dtype="bfloat16")
    assert bf16_model.embed[...].dtype == jnp.bfloat16
    bf16 = np.asarray(bf16_model(ids, mask))
    real = mask == 1
    assert np.abs(bf16[real] - f32[real]).max() < 0.1 * np.abs(f32[real]).max()


def test_remat_gives_the_same_gradient(checkpoint):
    _, directory, _ = checkpoint
    ids, mask = left_padded_batch(ROWS)

    def grad_of(model):
        from flax import nnx

        def loss(m):
            return jnp.mean(m(ids, mask) ** 2)

        return nnx.state(nnx.grad(loss)(model), nnx.Param).to_pure_dict()

    plain = grad_of(load_model(directory))
    remat = grad_of(load_model(directory, remat=True))
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_trace_size_does_not_grow_with_depth():
    """Layers are scanned: the forward program of a 2-layer and a 12-layer model has the same size."""
    def program_size(layers):
        cfg = ModelConfig(family="llama", vocab_size=64, hidden_size=32, intermediate_size=48,
                          num_layers=layers, num_heads=4, num_kv_heads=2, head_dim=8)
        from flax import nnx
        model = Decoder(cfg, nnx.Rngs(0))
        ids = jnp.zeros((2, 8), jnp.int32)
        text = jax.jit(lambda m, i: m(i, jnp.ones_like(i))).lower(model, ids).as_text()
        return len(text.splitlines())

    assert program_size(2) == program_size(12)


def test_every_parameter_has_logical_axis_names():
    from flax import nnx

    cfg = ModelConfig(family="qwen2", vocab_size=64, hidden_size=32, intermediate_size=48, num_layers=2,
                      num_heads=4, num_kv_heads=2, head_dim=8, qkv_bias=True)
    params = nnx.state(Decoder(cfg, nnx.Rngs(0)), nnx.Param)
    flat = nnx.to_flat_state(params)
    assert len(flat) == 15  # embed, 13 per-layer tensors, final norm, lm head
    for path, var in flat:
        axes = var.get_metadata()["out_sharding"]
        assert len(axes) == var[...].ndim and all(isinstance(a, str) for a in axes), path
        assert (axes[0] == "layers") == (path[0] == "layers"), path
