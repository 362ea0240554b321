"""One step of an offline baseline, SFT or DPO (the paper's Table 1 rows "+ SFT" and "+ DPO"), on the learner the RL
step uses; the trainer runs it in place of ``RLStep`` when ``train.objective.kind`` is sft or dpo:

  examples (prompt, given responses) -> encode rows -> collate -> reference log-probs (DPO) -> one optimizer step

Several processes: each encodes its own share of the batch; the rows are gathered, so every process updates on the
whole batch, as in the RL step.
"""

from __future__ import annotations

import time
from typing import Sequence

import jax
import numpy as np

from herl_jax import parallel
from herl_jax.chat_tokens import encode_chats, encode_texts
from herl_jax.data import OfflineExample
from herl_jax.herl import TrainingRecord, collate
from herl_jax.learner.config import ObjectiveConfig
from herl_jax.learner.learner import Learner, TrainState
from herl_jax.step.rl_step import Collector, sampling_policy


def encode_rows(tokenizer, examples: Sequence[OfflineExample], max_length: int) -> tuple[list[TrainingRecord], int]:
    """Each example's responses (SFT: one; DPO: chosen, then rejected) as training records under its chat-encoded
    prompt, each response ended by the tokenizer's end-of-turn (eos) token, as the sampler's replies end. An example
    with a row of more than ``max_length`` tokens is skipped; returns (records, examples skipped)."""
    end = tokenizer.eos_token_id
    if end is None:
        raise ValueError("the tokenizer has no eos token to end a response with")
    prompts = encode_chats(tokenizer, [e.messages for e in examples])
    responses = iter(encode_texts(tokenizer, [r for e in examples for r in e.responses]))
    records, skipped = [], 0
    for example, prompt in zip(examples, prompts):
        rows = [TrainingRecord(prompt, tuple(next(responses)) + (end,), advantage=0.0, reward=0.0)
                for _ in example.responses]
        if any(len(r.token_ids) > max_length for r in rows):
            skipped += 1
            continue
        records += rows
    return records, skipped


class OfflineStep:
    """SFT or DPO on a ``Learner``'s state, one optimizer step per batch; ``collector`` serves the trainer's held-out
    validation (greedy replies scored against a rubric). ``ref_params``: the frozen reference (DPO only)."""

    def __init__(self, learner: Learner, collector: Collector, objective: ObjectiveConfig, sequence_bucket: int,
                 ref_params=None):
        if objective.kind == "dpo" and ref_params is None:
            raise ValueError("DPO needs the frozen reference's parameters")
        self.learner, self.collector, self.objective = learner, collector, objective
        self.sequence_bucket, self.ref_params = sequence_bucket, ref_params

    def sampling_policy(self, params):
        return sampling_policy(self.learner, params)

    def __call__(self, state: TrainState, examples: Sequence[OfflineExample], step: int,
                 keep_groups: bool = False) -> tuple[TrainState, dict, tuple]:
        """Step ``step`` on this process's ``examples``; returns the new state, the step's metrics
        (samples/train_rows, samples/train_tokens, samples/long_examples_skipped, time/update, time/step and the
        loss's under train/, none when every example was skipped: no update) and, as RLStep's call does, the
        groups for the samples log: none, since nothing is sampled (``keep_groups`` is RLStep's)."""
        start = time.perf_counter()
        tokenizer, pad_id = self.collector.tokenizer, self.collector.pad_id
        mine = encode_rows(tokenizer, examples, self.objective.max_length)
        everyone = parallel.allgather_objects(mine)
        records = [r for rows, _ in everyone for r in rows]
        metrics = {"samples/long_examples_skipped": float(sum(skipped for _, skipped in everyone)),
                   "samples/train_rows": float(len(records))}
        if records:
            # Padded to the full batch (padding rows carry no loss): one shape a step, one optimizer step.
            rows = len(examples) * jax.process_count() * self.objective.rows_per_example
            batch = collate(records, pad_id=pad_id, bucket_size=self.sequence_bucket, batch_size=rows)
            update_start = time.perf_counter()
            ref = (self.learner.compute_logprobs(self.ref_params, batch, self.sequence_bucket)
                   if self.objective.kind == "dpo" else None)
            state, update = self.learner.optimizer_step(state, batch, None, ref, bucket_size=self.sequence_bucket)
            update = {k: float(v) for k, v in jax.device_get(update).items()}
            seconds = time.perf_counter() - update_start
            tokens = int(np.sum(batch["attention_mask"]))
            metrics.update({"samples/train_tokens": float(tokens), "time/update": seconds,
                            "perf/train_tokens_per_s": tokens / max(seconds, 1e-9),
                            **{f"train/{k}": v for k, v in update.items()}})
        metrics["time/step"] = time.perf_counter() - start
        return state, metrics, ()
