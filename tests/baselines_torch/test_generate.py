"""torch_generate (the PyTorch baseline's sampler) returns what our sampler returns: a well-formed
SampleOutput whose log-probs are those of a teacher-forced forward pass of the same model."""

import dataclasses

import numpy as np
import pytest
import torch
import transformers

from baselines.torch.herl_step import TorchPolicy, torch_generate
from herl_jax.models import ModelConfig
from herl_jax.sampling import SamplingConfig

PAD = 0
PROMPTS = [[5, 9, 14], [7, 3, 22, 40, 41, 8, 2], [11, 12, 13, 14, 15]]
STOP = tuple(range(50, 64))  # a fifth of the vocabulary: some rows stop early, others run to the limit


@pytest.fixture(scope="module")
def policy():
    """A tiny random Llama (2 layers, vocabulary 64) with weights ~ N(0, 0.3), so its logits are far from flat."""
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0.0, 0.3)
    cfg = ModelConfig.from_hf_dict({**config.to_dict(), "architectures": ["LlamaForCausalLM"]})
    return TorchPolicy(model, cfg)


def _teacher_forced_logprobs(model, prompt, completion, temperature):
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0].double()
    logp = torch.log_softmax(logits / temperature, dim=-1)[len(prompt) - 1 : len(prompt) + len(completion) - 1]
    return logp.gather(1, torch.tensor(completion)[:, None])[:, 0].numpy()


@pytest.mark.parametrize("stop,top_p,static_cache", [(STOP, 1.0, False), ((), 0.9, True)],
                         ids=["stop_ids", "no_stop_top_p_static_cache"])
def test_sample_output_is_well_formed_and_scores_its_tokens(policy, stop, top_p, static_cache):
    policy = dataclasses.replace(policy, static_cache=static_cache)  # static: what the GPU benchmark runs
    config = SamplingConfig(n=3, max_new_tokens=6, temperature=0.7, top_p=top_p, stop_token_ids=stop, seed=3,
                            prompt_bucket=4)
    out = torch_generate(policy, PROMPTS, config, pad_id=PAD)

    rows = len(PROMPTS) * config.n
    assert out.tokens.shape == out.logprobs.shape == out.mask.shape == (rows, config.max_new_tokens)
    assert (out.tokens.dtype, out.logprobs.dtype, out.mask.dtype) == (np.int32, np.float32, np.bool_)
    assert out.lengths.dtype == np.int32 and out.prompt_index.dtype == np.int32
    np.testing.assert_array_equal(out.prompt_index, np.repeat(np.arange(len(PROMPTS)), config.n))
    np.testing.assert_array_equal(out.mask, np.arange(config.max_new_tokens) < out.lengths[:, None])
    assert np.all(out.tokens[~out.mask] == PAD) and np.all(out.logprobs[~out.mask] == 0)
    for r in range(rows):
        completion, reason = out.completion(r), out.finish_reasons[r]
        is_stop = np.isin(completion, stop)
        if reason == "stop":  # ends at its first stop token
            assert is_stop[-1] and not is_stop[:-1].any()
        else:
            assert reason == "length" and len(completion) == config.max_new_tokens and not is_stop.any()
        # the temperature-scaled, untruncated distribution, whatever top_p kept for the draw
        expected = _teacher_forced_logprobs(policy.model, PROMPTS[out.prompt_index[r]], completion,
                                            config.temperature)
        np.testing.assert_allclose(out.logprobs[r, : len(completion)], expected, rtol=1e-4, atol=1e-4)
    if stop:
        assert set(out.finish_reasons) == {"stop", "length"}
    else:
        assert np.all(out.lengths == config.max_new_tokens)


def test_same_seed_same_samples(policy):
    config = SamplingConfig(n=2, max_new_tokens=5, seed=7, prompt_bucket=8)
    a, b = (torch_generate(policy, PROMPTS, config, pad_id=PAD) for _ in range(2))
    np.testing.assert_array_equal(a.tokens, b.tokens)
    c = torch_generate(policy, PROMPTS, config.replace(seed=8), pad_id=PAD)
    assert not np.array_equal(a.tokens, c.tokens)
