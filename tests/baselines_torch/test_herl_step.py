"""TorchHeRLStep, the PyTorch baseline's whole HeRL step, on a tiny random Llama over SmolLM2's vocabulary:
our host phases (rl_step.Collector) around transformers generate and the torch PPO update."""

import dataclasses
import math

import pytest
import torch
import transformers

from baselines.torch.herl_step import TorchHeRLStep
from herl_jax.config import validate
from herl_jax.data import load_dataset
from herl_jax.models import ModelConfig, load_tokenizer
from herl_jax.rubrics import RubricScorer
from tests.trainer.tiny_config import demo_config

N, NEW_TOKENS, PROMPTS = 3, 8, 2


def _config():
    c = demo_config()
    c.rollout.update(n=N, max_new_tokens=NEW_TOKENS)
    c.revision.update(max_new_tokens=NEW_TOKENS, max_prompt_len=1024, prompt_bucket=256)
    c.herl.success_threshold = 2.0  # above any reward: every group revises its best rollout
    c.train.ppo.update(mini_batch_size=PROMPTS * (N + 1), micro_batch_size=4)
    c.train.loss.kl_coef = 1e-3  # exercise the frozen reference copy
    c.train.optim.lr = 1e-3
    c.trainer.update(prompts_per_step=PROMPTS, sequence_bucket=256)
    return validate(c)


class _VaryingScorer:
    """The real scorer's verdicts with a reward that varies with the text's length: a random tiny model
    meets no rubric item, and equal rewards would leave every advantage, and so the gradient, zero."""

    def __init__(self, scorer):
        self.scorer = scorer

    def score_batch(self, prompts, texts, rubrics):
        results = self.scorer.score_batch(prompts, texts, rubrics)
        return [dataclasses.replace(r, score=len(t) % 5 / 5) for r, t in zip(results, texts)]


@pytest.fixture(scope="module")
def tiny_llama():
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=2048, tie_word_embeddings=True,
                                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    return model, ModelConfig.from_hf_dict({**config.to_dict(), "architectures": ["LlamaForCausalLM"]}), tokenizer


def test_one_step_samples_revises_and_updates(tiny_llama):
    model, model_cfg, tokenizer = tiny_llama
    run = _config()
    examples = next(load_dataset(run.data).train_batches(PROMPTS))
    before = [p.detach().clone() for p in model.parameters()]
    with RubricScorer(run.scorer) as scorer:
        step = TorchHeRLStep(model, model_cfg, tokenizer, _VaryingScorer(scorer), run, pad_id=tokenizer.eos_token_id,
                             fixed_lengths=True)
        metrics = step.step(examples, 0)

    assert metrics["rollout_tokens"] == PROMPTS * N * NEW_TOKENS  # fixed lengths: no early stop
    assert metrics["revision_tokens"] == PROMPTS * NEW_TOKENS
    assert metrics["train_rows"] == PROMPTS * (N + 1)
    assert metrics["train_tokens"] > metrics["rollout_tokens"] + metrics["revision_tokens"]
    for key in ("rollout_seconds", "revision_seconds", "update_seconds", "step_seconds"):
        assert 0 < metrics[key] <= metrics["step_seconds"], key
    for key in ("train/loss", "train/kl", "reward_mean"):
        assert math.isfinite(metrics[key]), key
    assert 0 < metrics["train/grad_norm"] < math.inf
    assert metrics["train/ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # the first update is on-policy
    # The sampled tokens' log-probs (from generate) are the update's old log-probs (a full forward).
    assert metrics["train/sampler_logprob_gap"] < 1e-4
    assert step.optimizer_steps == 1
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not any(p.requires_grad for p in step.reference.parameters())
