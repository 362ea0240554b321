"""Chunked sampling with host scoring overlapped (`sample_and_score`): on a tiny random model, which rows come
back; with a scripted sampler and scorer, that each piece is scored while the next one samples."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from herl_jax.models import load_policy
from herl_jax.sampling import SampleOutput, SamplingConfig, decode_completions, generate
from herl_jax.step.sample_and_score import ScoringTask, sample_and_score

PROMPTS = [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11, 12], [13, 14], [15, 16, 17, 18]]
CONFIG = SamplingConfig(n=2, max_new_tokens=6, temperature=1.0, seed=7, prompt_bucket=8)


@pytest.fixture(scope="module")
def policy(tiny_checkpoint):
    return load_policy(str(tiny_checkpoint), dtype="float32")


class EchoScorer:
    """Records the texts of each call and scores each text by a number of its own (its length)."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def score_batch(self, prompts, texts, rubrics):
        self.calls.append(list(texts))
        assert prompts == [t.split(":")[0] for t in rubrics]  # each row was asked against its own prompt's task
        return [Result(len(t)) for t in texts]


class Result:
    def __init__(self, score):
        self.score, self.dropped = score, False


TASKS = [ScoringTask(f"task {i}", f"task {i}: rubric") for i in range(len(PROMPTS))]


def test_one_chunk_is_the_plain_sampler(policy):
    model, tokenizer = policy
    scorer = EchoScorer()
    batch = sample_and_score(generate, scorer, model, tokenizer, PROMPTS, TASKS, CONFIG, pad_id=0, chunks=1)
    plain = generate(model, PROMPTS, CONFIG)
    texts = decode_completions(tokenizer, plain)
    assert [list(s.response_ids) for s in batch.samples] == [plain.completion(r) for r in range(10)]
    np.testing.assert_array_equal(np.concatenate([s.sampler_logprobs for s in batch.samples]),
                                  plain.logprobs[plain.mask])
    assert scorer.calls == [texts]
    assert [s.text for s in batch.samples] == texts
    assert [s.result.score for s in batch.samples] == [len(t) for t in texts]
    assert [s.prompt for s in batch.samples] == list(np.repeat(np.arange(5), 2))
    assert all(s.context_ids == tuple(PROMPTS[s.prompt]) for s in batch.samples)


def test_chunks_cover_every_row_once_in_order(policy):
    model, tokenizer = policy
    scorer = EchoScorer()
    batch = sample_and_score(generate, scorer, model, tokenizer, PROMPTS, TASKS, CONFIG, pad_id=0, chunks=3)
    assert len(scorer.calls) == 3
    assert [t for call in scorer.calls for t in call] == [s.text for s in batch.samples]
    assert [s.prompt for s in batch.samples] == list(np.repeat(np.arange(5), 2))
    assert [s.result.score for s in batch.samples] == [len(s.text) for s in batch.samples]  # each at its own row
    # The first piece is sampled exactly as an unchunked call on its prompts would be.
    first_prompts = len(scorer.calls[0]) // 2
    first = generate(model, PROMPTS[:first_prompts], CONFIG)
    assert [list(s.response_ids) for s in batch.samples[: 2 * first_prompts]] == [
        first.completion(r) for r in range(2 * first_prompts)]
    # Later pieces draw with their own seeds (not piece 0's stream again).
    same_seed = generate(model, PROMPTS[2:4], CONFIG)
    assert [list(s.response_ids) for s in batch.samples[4:8]] != [same_seed.completion(r) for r in range(4)]


GUARD = 30.0  # seconds a handshake waits before giving up: reached only when the overlap is lost


class Handshake:
    """A scripted sampler and scorer that each record what the other had done.

    The sampler, called for piece j > 0, first waits until piece j - 1's scoring has started, then records
    (pieces whose scoring had started, pieces scored); the scorer holds piece k's scores back until the sampler
    has been called for piece k + 1. Overlapped, neither wait lasts: the sampler records (j, j - 1). Sampled
    all before any is scored, the sampler records (0, 0); scored before the next piece samples, (j, j). Only
    a lost overlap waits out a GUARD, and the record, not the time, tells it."""

    def __init__(self, pieces: int):
        self.pieces, self.started, self.finished, self.seen = pieces, 0, 0, []
        self.scoring = [threading.Event() for _ in range(pieces)]  # piece k's scoring has started
        self.sampling = [threading.Event() for _ in range(pieces)]  # piece j's sampler call has recorded

    def __call__(self, policy, prompts, config, pad_id=0) -> SampleOutput:
        j = len(self.seen)
        if j:
            self.scoring[j - 1].wait(GUARD)
        self.seen.append((self.started, self.finished))
        self.sampling[j].set()
        tokens = np.array([[p[0]] for p in prompts], np.int32)  # one row per prompt: its first token
        ones = np.ones(len(prompts), np.int32)
        return SampleOutput(tokens, np.zeros(tokens.shape, np.float32), tokens > -1, ones, ("length",) * len(prompts),
                            np.arange(len(prompts), dtype=np.int32))

    def score_batch(self, prompts, texts, rubrics):
        k = self.started
        self.started += 1
        self.scoring[k].set()
        if k + 1 < self.pieces:
            self.sampling[k + 1].wait(GUARD)
        self.finished += 1
        return [Result(int(t)) for t in texts]


class Digits:  # decodes a token id as its digits
    def decode(self, ids, skip_special_tokens=True):
        return "".join(str(i) for i in ids)


def test_each_piece_is_scored_while_the_next_one_samples():
    prompts, tasks = [[i] for i in range(6)], [ScoringTask(f"task {i}", None) for i in range(6)]
    handshake = Handshake(pieces=3)
    batch = sample_and_score(handshake, handshake, None, Digits(), prompts, tasks,
                             SamplingConfig(n=1, max_new_tokens=1), pad_id=0, chunks=3)
    assert handshake.seen == [(0, 0), (1, 0), (2, 1)]  # piece j sampled while piece j - 1 was being scored
    assert [(s.prompt, s.result.score) for s in batch.samples] == [(i, i) for i in range(6)]


def test_a_call_without_prompts_samples_nothing_and_scores_nothing(policy):
    """What a process whose share of the step is empty does (every process must still make the call)."""
    model, tokenizer = policy
    scorer = EchoScorer()
    batch = sample_and_score(generate, scorer, model, tokenizer, [], [], CONFIG, pad_id=0, chunks=4)
    assert scorer.calls == [] and batch.samples == ()


def test_the_rows_of_a_range_of_prompts(policy):
    model, _ = policy
    out = generate(model, PROMPTS, CONFIG)
    middle = out.prompts(1, 3)  # prompts 1 and 2: rows 2..5
    np.testing.assert_array_equal(middle.tokens, out.tokens[2:6])
    np.testing.assert_array_equal(middle.lengths, out.lengths[2:6])
    assert middle.finish_reasons == out.finish_reasons[2:6]
    np.testing.assert_array_equal(middle.prompt_index, [0, 0, 1, 1])
    assert len(out.prompts(2, 2).lengths) == 0  # an empty range: what a process with no prompts in a piece keeps
