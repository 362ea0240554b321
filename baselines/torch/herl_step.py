"""One HeRL step with PyTorch and transformers doing the device work (the speed baseline of the full step).

  rollouts, revisions:  ``model.generate`` (sampling, n per prompt, left padding; optionally a static
                        cache, which transformers compiles with torch.compile on a GPU), plus the
                        log-prob of each sampled token                      -> ``torch_generate``
  host:                 our chat encoding, rubric scorer, candidate selection, revise prompts, group
                        assembly and ``collate`` -- the very ``rl_step.Collector`` our trainer runs,
                        with ``torch_generate`` plugged in as its ``sampler``
  update:               old (and reference) log-probs, then PPO mini-batch steps with the torch HeRL
                        loss and AdamW (train_step.py), bf16 autocast when asked

So the JAX step and this one differ only in the device work. ``TorchHeRLStep.step(examples, seed)``
returns the step's metrics and timings, keyed as ``shared_step.step_metrics`` documents.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Sequence

import numpy as np
import torch
import transformers

from baselines.torch.loss import LossConfig
from baselines.torch.shared_step import GenerateTimer, step_metrics
from baselines.torch.train_step import compute_logprobs, train_step
from herl_jax.buckets import prompt_bucket_len
from herl_jax.models import ModelConfig
from herl_jax.sampling import SampleOutput, SamplingConfig
from herl_jax.step.rl_step import Collector, StepSettings, collate_step, step_metrics as rl_step_metrics
from herl_jax.training.run_config import RunConfig
from herl_jax.learner.seeds import shuffle_rng


@dataclasses.dataclass
class TorchPolicy:
    """A transformers causal LM as ``rl_step.Collector`` sees a policy.

    cfg: our ModelConfig of the same model; like our Decoder's, it supplies the end-of-turn (stop) ids.
    static_cache: generate with ``cache_implementation="static"`` (compiled by transformers on a GPU).
    """

    model: transformers.PreTrainedModel
    cfg: ModelConfig
    static_cache: bool = False


class SampledTokenLogprobs(transformers.LogitsProcessor):
    """Records log π(token) of each sampled token under the temperature-scaled, untruncated distribution.

    Called once per decode step with the ids so far and that step's logits [R, V]; it keeps one step's
    log-softmax and reads the token drawn from it at the next call, so it never holds [steps, R, V].
    """

    def __init__(self, temperature: float):
        self.temperature = temperature
        self.previous: torch.Tensor | None = None
        self.columns: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._take(input_ids[:, -1])
        self.previous = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _take(self, tokens: torch.Tensor) -> None:
        if self.previous is not None:
            self.columns.append(self.previous.gather(1, tokens[:, None])[:, 0])

    def result(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """[R, steps] log-probs of ``new_tokens`` [R, steps], the generated part of the sequences."""
        self._take(new_tokens[:, -1])
        return torch.stack(self.columns, dim=1)


@torch.no_grad()
def torch_generate(policy: TorchPolicy, prompts: Sequence[Sequence[int]], config: SamplingConfig,
                   pad_id: int = 0) -> SampleOutput:
    """``herl_jax.sampling.generate`` done by transformers: ``config.n`` completions per prompt.

    Prompts are left-padded to our sampler's prompt bucket (herl_jax.buckets; so a static cache's compiled
    step is reused across calls); rows are prompt-major, as ours. With no stop ids every row runs to
    ``max_new_tokens``. Returns numpy arrays on the host, shaped as ``SampleOutput`` documents.
    """
    model = policy.model
    width = prompt_bucket_len(max(len(p) for p in prompts), config.prompt_bucket, config.max_prompt_len)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt):] = torch.as_tensor(prompt)
        mask[i, width - len(prompt):] = 1

    logprobs = SampledTokenLogprobs(config.temperature or 1.0)
    sampling = dict(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=config.top_k)
    torch.manual_seed(config.seed)
    sequences = model.generate(
        input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
        **(sampling if not config.greedy else dict(do_sample=False)),
        max_new_tokens=config.max_new_tokens, num_return_sequences=config.n,
        eos_token_id=list(config.stop_token_ids), pad_token_id=pad_id, logits_processor=[logprobs],
        cache_implementation="static" if policy.static_cache else None,
    )
    new = sequences[:, width:]
    steps_logprobs = logprobs.result(new)
    new, steps_logprobs = new.cpu().numpy().astype(np.int32), steps_logprobs.float().cpu().numpy()

    rows, max_new = new.shape[0], config.max_new_tokens
    is_stop = np.isin(new, config.stop_token_ids)
    stopped = is_stop.any(axis=1)
    lengths = np.where(stopped, is_stop.argmax(axis=1) + 1, new.shape[1]).astype(np.int32)
    mask_out = np.arange(max_new)[None, :] < lengths[:, None]
    tokens = np.full((rows, max_new), pad_id, np.int32)
    tokens[:, : new.shape[1]] = new
    out_logprobs = np.zeros((rows, max_new), np.float32)
    out_logprobs[:, : new.shape[1]] = steps_logprobs
    return SampleOutput(
        tokens=np.where(mask_out, tokens, pad_id).astype(np.int32),
        logprobs=np.where(mask_out, out_logprobs, 0.0).astype(np.float32),
        mask=mask_out,
        lengths=lengths,
        finish_reasons=tuple("stop" if s else "length" for s in stopped),
        prompt_index=np.repeat(np.arange(len(prompts), dtype=np.int32), config.n),
    )


class TorchHeRLStep:
    """Our RL step (``herl_jax.step.rl_step.RLStep``), with PyTorch doing the device work.

    model: a transformers causal LM with float32 parameters on its device (trained in place).
    model_cfg: our ModelConfig of it (stop ids). run: the typed run config (``herl_jax.config.validate``).
    autocast_dtype: None (fp32, e.g. on a CPU) or torch.bfloat16: the update runs under autocast and the
    rollouts on a bf16 copy of the weights, refreshed at the start of each step (ours samples with the
    parameters cast to the compute dtype the same way). fixed_lengths: see ``GenerateTimer``.
    """

    def __init__(self, model: transformers.PreTrainedModel, model_cfg: ModelConfig, tokenizer, scorer,
                 run: RunConfig, *, pad_id: int, autocast_dtype: torch.dtype | None = None,
                 static_cache: bool = False, fixed_lengths: bool = False):
        self.model, self.tokenizer, self.scorer, self.run = model.train(), tokenizer, scorer, run
        self.pad_id, self.autocast_dtype, self.fixed_lengths = pad_id, autocast_dtype, fixed_lengths
        self.settings = StepSettings.from_run(run)
        sampler = model if autocast_dtype is None else copy.deepcopy(model).to(autocast_dtype).eval()
        self.policy = TorchPolicy(sampler, model_cfg, static_cache)
        self.reference = None
        if run.learner.loss.kl_coef > 0:  # a frozen copy of the initial policy
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        self.loss_cfg = LossConfig(**{f.name: getattr(run.learner.loss, f.name)
                                      for f in dataclasses.fields(LossConfig)})
        o = run.optim
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps,
                                           weight_decay=o.weight_decay, fused=model.device.type == "cuda")
        # optax's warmup_constant_schedule: lr * min(1, optimizer step / warmup_steps), from step 0.
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, s / o.warmup_steps) if o.warmup_steps else 1.0)
        self.optimizer_steps = 0

    def step(self, examples, step: int) -> dict[str, float]:
        """RL step ``step`` on ``examples``: the experience with torch_generate, then the PPO update."""
        start = time.perf_counter()
        if self.policy.model is not self.model:
            with torch.no_grad():
                for s, p in zip(self.policy.model.parameters(), self.model.parameters(), strict=True):
                    s.copy_(p)
        timer = GenerateTimer(torch_generate, self.fixed_lengths)
        collector = Collector(self.settings, self.tokenizer, self.scorer, self.pad_id, sampler=timer)
        experience = collector.collect(self.policy, examples, step)
        batch, update, update_seconds = None, {}, 0.0
        if experience.records:
            batch = collate_step(experience, self.pad_id, self.settings)
            update_start = time.perf_counter()
            update = self.update(batch)
            update_seconds = time.perf_counter() - update_start
        metrics = rl_step_metrics(experience, self.run.herl.success_threshold, batch, update, update_seconds)
        metrics["time/step"] = time.perf_counter() - start
        return step_metrics(timer, metrics)

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """``herl_jax.training.update_policy`` in torch: old / reference log-probs of every row, then
        ``ppo.epochs`` shuffled passes of mini-batch steps. Returns the mean of each step metric
        (ratio_max: the max) and sampler_logprob_gap, mean |sampler − old log-prob| over sampled tokens."""
        ppo, device = self.run.ppo, self.model.device
        tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
        kwargs = dict(micro_batch_size=self.run.learner.micro_batch_size, temperature=self.run.learner.temperature,
                      autocast_dtype=self.autocast_dtype)
        old = compute_logprobs(self.model, tensors, **kwargs)
        ref = None if self.reference is None else compute_logprobs(self.reference, tensors, **kwargs)

        rows, size = batch["input_ids"].shape[0], ppo.mini_batch_size
        rng = shuffle_rng(ppo.seed, self.optimizer_steps)
        steps = []
        for _ in range(ppo.epochs):
            order = rng.permutation(rows)
            for i in range(0, rows, size):
                idx = torch.from_numpy(order[i : i + size]).to(device)
                steps.append(train_step(self.model, self.optimizer, {k: v[idx] for k, v in tensors.items()},
                                        old[idx], None if ref is None else ref[idx], self.loss_cfg,
                                        max_grad_norm=self.run.optim.max_grad_norm, **kwargs))
                self.schedule.step()
                self.optimizer_steps += 1
        metrics = {k: float((torch.stack([s[k] for s in steps]).max() if k == "ratio_max"
                             else torch.stack([s[k] for s in steps]).mean()).float()) for k in steps[0]}
        sampled = tensors["sampler_mask"]
        gap = (tensors["sampler_logprobs"] - old).abs()
        metrics["sampler_logprob_gap"] = float(torch.where(sampled, gap, 0.0).sum() / sampled.sum().clamp(min=1))
        return metrics
