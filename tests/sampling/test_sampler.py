"""The sampler against transformers' greedy generate, a teacher-forced forward pass, and exact
distributions (chi-square) on a model whose next-token logits are set by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from herl_jax.models import Decoder, ModelConfig, load_model
from herl_jax.sampling import SamplingConfig, generate
from tests.models.hf_reference import left_padded_batch, make_checkpoint

VOCAB = 12


def fixed_distribution_model(logits: np.ndarray) -> Decoder:
    """A decoder whose next-token logits are `logits` [V] after every context.

    Attention and MLP outputs are zero (o_proj, down_proj = 0), so the final hidden state is the RMS-normed
    embedding; every token embeds to (sqrt(D), 0, ...), which normalizes to itself, and the LM head's
    first row is logits / sqrt(D).
    """
    d = 8
    cfg = ModelConfig(family="llama", vocab_size=len(logits), hidden_size=d, intermediate_size=8, num_layers=2,
                      num_heads=2, num_kv_heads=1, head_dim=4)
    model = Decoder(cfg, nnx.Rngs(0))
    model.layers.attn.o_proj[...] = jnp.zeros_like(model.layers.attn.o_proj[...])
    model.layers.mlp.down_proj[...] = jnp.zeros_like(model.layers.mlp.down_proj[...])
    embed = np.zeros((len(logits), d), np.float32)
    embed[:, 0] = np.sqrt(d)
    model.embed[...] = jnp.asarray(embed)
    head = np.zeros((d, len(logits)), np.float32)
    head[0] = logits / np.sqrt(d)
    model.lm_head[...] = jnp.asarray(head)
    return model


def filtered_probabilities(logits, temperature, top_k, top_p):
    """The target distribution, derived independently in float64 (HF's warper order: T, top-k, top-p)."""
    z = np.asarray(logits, np.float64) / temperature
    keep = np.ones_like(z, bool)
    if top_k:
        keep &= z >= np.sort(z)[-top_k]
    p = np.where(keep, np.exp(z - z.max()), 0.0)
    p /= p.sum()
    if top_p < 1:
        order = np.argsort(-p)
        cumulative = np.cumsum(p[order])
        cutoff = np.searchsorted(cumulative, top_p) + 1  # smallest prefix with mass >= top_p
        kept = np.zeros_like(keep)
        kept[order[:cutoff]] = True
        p = np.where(kept, p, 0.0)
        p /= p.sum()
    return p


LOGITS = np.array([2.0, 1.5, 1.2, 1.0, 0.5, 0.3, 0.0, -0.2, -0.5, -1.0, -1.5, -3.0], np.float32)


def matches(counts: np.ndarray, expected: np.ndarray) -> bool:
    """Counts are consistent with `expected`: nothing outside its support, and a chi-square p > 1e-3."""
    if counts[expected == 0].sum():
        return False
    support = expected > 0
    return scipy.stats.chisquare(counts[support], expected[support] * counts.sum()).pvalue > 1e-3


def sampled_counts(temperature, top_k, top_p, seed=3):
    model = fixed_distribution_model(LOGITS)
    config = SamplingConfig(n=500, max_new_tokens=8, temperature=temperature, top_k=top_k, top_p=top_p,
                            seed=seed, prompt_bucket=4)
    out = generate(model, [[1, 2], [3]], config)
    return np.bincount(out.tokens[out.mask], minlength=VOCAB)


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, 0, 1.0), (0.6, 0, 1.0), (1.0, 4, 1.0), (1.0, 0, 0.8), (1.3, 6, 0.8),
])
def test_token_frequencies_match_the_filtered_distribution(temperature, top_k, top_p):
    counts = sampled_counts(temperature, top_k, top_p)
    assert matches(counts, filtered_probabilities(LOGITS, temperature, top_k, top_p)), counts


def test_a_wrong_filter_is_detected():
    """The check has power: a dropped temperature, an ignored filter or an off-by-one cut all fail it."""
    assert not matches(sampled_counts(0.6, 0, 1.0), filtered_probabilities(LOGITS, 1.0, 0, 1.0))
    top_p_counts = sampled_counts(1.0, 0, 0.8)  # keeps 5 tokens (cumulative mass 0.816)
    assert not matches(top_p_counts, filtered_probabilities(LOGITS, 1.0, 0, 1.0))
    assert not matches(top_p_counts, filtered_probabilities(LOGITS, 1.0, 4, 1.0))
    assert not matches(top_p_counts, filtered_probabilities(LOGITS, 1.0, 6, 1.0))


@pytest.mark.parametrize("decode_slots", [0, 16], ids=["static batch", "16 slots"])
def test_stop_tokens_lengths_and_finish_reasons(decode_slots):
    model = fixed_distribution_model(LOGITS)
    stop = (2, 5)
    out = generate(model, [[1, 2, 3], [4]], SamplingConfig(n=64, max_new_tokens=10, stop_token_ids=stop, seed=7,
                                                           prompt_bucket=4, decode_slots=decode_slots), pad_id=11)
    assert out.tokens.shape == (128, 10)
    for row in range(128):
        tokens = out.tokens[row]
        hits = np.flatnonzero(np.isin(tokens[: out.lengths[row]], stop))
        if out.finish_reasons[row] == "stop":
            assert len(hits) == 1 and hits[0] == out.lengths[row] - 1  # ends at its first stop token
        else:
            assert len(hits) == 0 and out.lengths[row] == 10
        assert np.all(tokens[out.lengths[row]:] == 11) and np.all(out.logprobs[row, out.lengths[row]:] == 0)
        np.testing.assert_array_equal(out.mask[row], np.arange(10) < out.lengths[row])
    assert {"stop", "length"} == set(out.finish_reasons)
    np.testing.assert_array_equal(out.prompt_index, np.repeat([0, 1], 64))


def test_samples_differ_at_temperature_one_and_coincide_under_greedy():
    model = fixed_distribution_model(LOGITS)
    sampled = generate(model, [[1, 2]], SamplingConfig(n=4, max_new_tokens=16, prompt_bucket=4))
    assert len({tuple(r) for r in sampled.tokens}) == 4
    greedy = generate(model, [[1, 2]], SamplingConfig(n=4, max_new_tokens=16, temperature=0, prompt_bucket=4))
    assert (greedy.tokens == 0).all()  # argmax of LOGITS, every step


def test_deterministic_for_a_seed():
    model = fixed_distribution_model(LOGITS)
    config = SamplingConfig(n=3, max_new_tokens=12, seed=11, prompt_bucket=4)
    a, b = generate(model, [[1], [2, 3]], config), generate(model, [[1], [2, 3]], config)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    c = generate(model, [[1], [2, 3]], config.replace(seed=12))
    assert not np.array_equal(a.tokens, c.tokens)


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen3")
    make_checkpoint("qwen3", directory)
    return load_model(directory)


def test_logprobs_equal_teacher_forced_forward(tiny_qwen3):
    prompts = [[5, 17, 3, 88, 41], [7, 19], [90, 1, 64, 28]]
    temperature = 0.7
    out = generate(tiny_qwen3, prompts, SamplingConfig(n=2, max_new_tokens=12, temperature=temperature,
                                                      seed=5, prompt_bucket=8))
    rows = [prompts[out.prompt_index[r]] + out.completion(r) for r in range(len(out.lengths))]
    ids, mask = left_padded_batch(rows)
    logits = np.asarray(tiny_qwen3(ids, mask), np.float64) / temperature
    logsoftmax = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    for r, row in enumerate(rows):
        n_new = out.lengths[r]
        width = ids.shape[1]
        positions = np.arange(width - n_new - 1, width - 1)  # each position predicts the next token
        expected = logsoftmax[r, positions, ids[r, positions + 1]]
        np.testing.assert_allclose(out.logprobs[r, :n_new], expected, atol=1e-4)


def test_no_recompilation_within_a_bucket(tiny_qwen3):
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: compiles.append(event) if "backend_compile" in event else None)
    config = SamplingConfig(n=2, max_new_tokens=6, prompt_bucket=16)
    generate(tiny_qwen3, [[1, 2, 3], [4, 5, 6, 7, 8]], config)
    first = len(compiles)
    generate(tiny_qwen3, [[9] * 11, [3, 1]], config.replace(seed=4))  # other prompts, same buckets
    assert first > 0 and len(compiles) == first
    generate(tiny_qwen3, [[9] * 20], config)  # a longer bucket compiles anew
    assert len(compiles) > first


@pytest.mark.parametrize("prompts,config,message", [
    ([[1, 2], []], SamplingConfig(), "prompt 1 is empty"),
    ([[1] * 9], SamplingConfig(max_prompt_len=8), "max_prompt_len"),
    ([], SamplingConfig(), "at least one prompt"),
])
def test_bad_prompts(tiny_qwen3, prompts, config, message):
    with pytest.raises(ValueError, match=message):
        generate(tiny_qwen3, prompts, config)


@pytest.mark.parametrize("field,value", [("n", 0), ("top_p", 0.0), ("top_p", 1.5), ("temperature", -1.0),
                                         ("max_new_tokens", 0), ("top_k", -2)])
def test_bad_settings(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingConfig(**{field: value})


def test_unknown_config_key():
    with pytest.raises(KeyError, match="temprature"):
        SamplingConfig.from_config({"temprature": 0.5})
