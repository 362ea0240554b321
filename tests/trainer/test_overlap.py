"""Chunked sampling with host scoring overlapped (experience.generate_and_score), on a tiny random model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from herl_jax.models import load_policy
from herl_jax.sampling import SamplingConfig, generate
from herl_jax.training.experience import StepCounts, generate_and_score, texts_of

PROMPTS = [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11, 12], [13, 14], [15, 16, 17, 18]]
CONFIG = SamplingConfig(n=2, max_new_tokens=6, temperature=1.0, seed=7, prompt_bucket=8)


@pytest.fixture(scope="module")
def policy(tiny_checkpoint):
    return load_policy(str(tiny_checkpoint), dtype="float32")


def echo_scorer(calls):
    """A score function that records each call and returns, per row, the (row, text) it was given."""

    def score(rows, texts):
        calls.append(list(rows))
        return list(zip(rows, texts))

    return score


def test_one_chunk_is_the_plain_sampler(policy):
    model, tokenizer = policy
    calls = []
    out, texts, results = generate_and_score(model, tokenizer, PROMPTS, CONFIG, 0, StepCounts(), 1,
                                             echo_scorer(calls))
    plain = generate(model, PROMPTS, CONFIG)
    np.testing.assert_array_equal(out.tokens, plain.tokens)
    np.testing.assert_array_equal(out.logprobs, plain.logprobs)
    assert calls == [list(range(10))]
    assert texts == texts_of(tokenizer, plain)
    assert results == list(zip(range(10), texts))


def test_chunks_cover_every_row_once_in_order(policy):
    model, tokenizer = policy
    calls = []
    out, texts, results = generate_and_score(model, tokenizer, PROMPTS, CONFIG, 0, StepCounts(), 3,
                                             echo_scorer(calls))
    assert [r for call in calls for r in call] == list(range(10))
    assert len(calls) == 3
    np.testing.assert_array_equal(out.prompt_index, np.repeat(np.arange(5), 2))
    assert texts == texts_of(tokenizer, out)
    assert results == list(zip(range(10), texts))  # each row's result sits at its own row
    # The first piece is sampled exactly as an unchunked call on its prompts would be.
    first = generate(model, PROMPTS[: len(calls[0]) // 2], CONFIG)
    np.testing.assert_array_equal(out.tokens[: len(calls[0])], first.tokens)
    # Later pieces draw with their own seeds (not piece 0's stream again).
    same_seed = generate(model, PROMPTS[2:4], CONFIG)
    assert not np.array_equal(out.tokens[4:8], same_seed.tokens)


def test_scoring_runs_while_the_next_piece_samples(policy):
    model, tokenizer = policy
    generate(model, PROMPTS[:2], CONFIG)  # compile outside the timed part
    events = []
    lock = threading.Lock()

    def recording_generate(*args, **kwargs):
        with lock:
            events.append(("sample", time.perf_counter()))
        return generate(*args, **kwargs)

    def slow_score(rows, texts):
        time.sleep(1.0)
        with lock:
            events.append(("scored", time.perf_counter()))
        return [None] * len(rows)

    counts = StepCounts()
    generate_and_score(model, tokenizer, PROMPTS[:4], CONFIG, 0, counts, 2, slow_score,
                       generate_fn=recording_generate)
    samples = [t for kind, t in events if kind == "sample"]
    scored = [t for kind, t in events if kind == "scored"]
    assert len(samples) == 2 and len(scored) == 2
    assert samples[1] < scored[0]  # piece 1 was sampled before piece 0's scores came back
    assert counts.score_seconds >= 2.0
    assert counts.score_wait_seconds < counts.score_seconds


def test_a_call_without_prompts_samples_nothing_and_scores_nothing(policy):
    """What a process whose share of the step is empty does (every process must still make the call)."""
    model, tokenizer = policy
    calls = []
    out, texts, results = generate_and_score(model, tokenizer, [], CONFIG, 0, StepCounts(), 4, echo_scorer(calls))
    assert calls == [] and texts == [] and results == []
    assert out.tokens.shape == (0, CONFIG.max_new_tokens) and out.num_prompts == 0


def test_the_rows_of_a_range_of_prompts(policy):
    model, _ = policy
    out = generate(model, PROMPTS, CONFIG)
    middle = out.prompts(1, 3)  # prompts 1 and 2: rows 2..5
    np.testing.assert_array_equal(middle.tokens, out.tokens[2:6])
    np.testing.assert_array_equal(middle.lengths, out.lengths[2:6])
    assert middle.finish_reasons == out.finish_reasons[2:6]
    np.testing.assert_array_equal(middle.prompt_index, [0, 0, 1, 1])
    assert out.prompts(2, 2).num_prompts == 0
