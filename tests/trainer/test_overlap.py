"""Chunked sampling with host scoring overlapped (sample_and_score.sample / .score), on a tiny random model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from herl_jax.models import load_policy
from herl_jax.sampling import SamplingConfig, decode_completions, generate
from herl_jax.training.sample_and_score import ScoringTask, sample, score

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
    batch = score(scorer, sample(generate, model, tokenizer, PROMPTS, CONFIG, pad_id=0, chunks=1), PROMPTS, TASKS)
    plain = generate(model, PROMPTS, CONFIG)
    texts = decode_completions(tokenizer, plain)
    assert [list(s.response_ids) for s in batch.samples] == [plain.completion(r) for r in range(10)]
    np.testing.assert_array_equal(np.concatenate([s.logprobs for s in batch.samples]),
                                  plain.logprobs[plain.mask])
    assert scorer.calls == [texts]
    assert [s.text for s in batch.samples] == texts
    assert [s.result.score for s in batch.samples] == [len(t) for t in texts]
    assert [s.prompt for s in batch.samples] == list(np.repeat(np.arange(5), 2))
    assert all(s.context_ids == tuple(PROMPTS[s.prompt]) for s in batch.samples)


def test_chunks_cover_every_row_once_in_order(policy):
    model, tokenizer = policy
    scorer = EchoScorer()
    batch = score(scorer, sample(generate, model, tokenizer, PROMPTS, CONFIG, pad_id=0, chunks=3), PROMPTS, TASKS)
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


class WaitingScorer:
    """Signals `started` when asked to score, then returns only once `release` is set (or `timeout` has
    passed); records, per call, whether it was released."""

    def __init__(self, started: threading.Event, release: threading.Event, timeout: float):
        self.started, self.release, self.timeout, self.released = started, release, timeout, []

    def score_batch(self, prompts, texts, rubrics):
        self.started.set()
        self.released.append(self.release.wait(self.timeout))
        return [None] * len(texts)


def test_scoring_runs_while_the_next_piece_samples(policy):
    """Piece 1 is sampled only once piece 0's scoring has started, and piece 0's scores are held back until
    piece 1 has been sampled. Overlapped, both waits end at once. Scored one piece after the other, or sampled
    all before any is scored, one side waits for an event that cannot come and times out (the timeout guards
    against a hang; nothing is timed)."""
    model, tokenizer = policy
    scoring_started, piece_1_sampled = threading.Event(), threading.Event()
    waited = []  # per sampler call: whether piece 0's scoring had started (piece 0 waits for nothing)

    def recording_generate(*args, **kwargs):
        waited.append(scoring_started.wait(60.0) if waited else True)
        out = generate(*args, **kwargs)
        if len(waited) == 2:
            piece_1_sampled.set()
        return out

    scorer = WaitingScorer(scoring_started, piece_1_sampled, timeout=60.0)
    prompts, tasks = PROMPTS[:4], [ScoringTask(f"task {i}", None) for i in range(4)]
    batch = score(scorer, sample(recording_generate, model, tokenizer, prompts, CONFIG, pad_id=0, chunks=2),
                  prompts, tasks)
    assert waited == [True, True]  # piece 1 sampled while piece 0 was being scored ...
    assert scorer.released == [True, True]  # ... and before piece 0's scores were returned
    assert [s.prompt for s in batch.samples] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_call_without_prompts_samples_nothing_and_scores_nothing(policy):
    """What a process whose share of the step is empty does (every process must still make the call)."""
    model, tokenizer = policy
    scorer = EchoScorer()
    batch = score(scorer, sample(generate, model, tokenizer, [], CONFIG, pad_id=0, chunks=4), [], [])
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
