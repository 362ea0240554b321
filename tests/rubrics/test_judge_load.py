"""Load: 2,000 judgements at concurrency 64 against the local server, with faults; none is lost."""

import re
import time

import pytest

from herl_jax.rubrics import JudgeConfig, Rubric, RubricScorer, ScorerConfig

from .openai_stub import OpenAIStub, Reply, rubric_items, truthful_answer

RESPONSES, ITEMS_EACH = 500, 4


def item_number(request) -> int:
    return int(re.search(r"#(\d+)", rubric_items(request)[0]).group(1))


def script(request, attempt):
    n = item_number(request)
    if n % 50 == 1:  # 40 judgements whose answer is garbage every time
        return Reply(content="no idea")
    if n % 20 == 0 and attempt == 1:  # 100 judgements that hit a 500 first
        return Reply(status=500)
    # Held a moment, as a real judge is, so that the client's 64 workers are all in flight at once
    # even on a slow, loaded machine (an instant answer frees a worker before the next one sends).
    return Reply(content=truthful_answer(request), delay_s=0.2)


def test_2000_judgements_at_concurrency_64_end_in_a_result_or_a_counted_drop(monkeypatch):
    monkeypatch.setenv("LOAD_TEST_KEY", "k")
    rubrics, expected = [], []
    for r in range(RESPONSES):
        numbers = range(r * ITEMS_EACH, (r + 1) * ITEMS_EACH)
        rubrics.append(Rubric.from_criteria([(f"{'UNMET' if n % 3 == 0 else 'MET'} item #{n}", 1.0) for n in numbers]))
        garbage = any(n % 50 == 1 for n in numbers)
        expected.append(None if garbage else sum(n % 3 != 0 for n in numbers) / ITEMS_EACH)
    with OpenAIStub(script) as stub:
        judge = JudgeConfig(base_url=stub.base_url, model="m", api_key_env="LOAD_TEST_KEY", mode="per_criterion",
                            max_concurrency=64, backoff_base_s=0.01, max_retries=2, timeout_s=30)
        with RubricScorer(ScorerConfig(judge=judge)) as scorer:
            start = time.monotonic()
            results = scorer.score_batch(["q"] * RESPONSES, [f"response {r}" for r in range(RESPONSES)], rubrics)
            elapsed = time.monotonic() - start
    stats = scorer.stats
    assert len(results) == RESPONSES
    assert [r.score for r in results] == [pytest.approx(e) if e is not None else None for e in expected]
    assert stats.judge.calls == 2000
    assert stats.judge.failures == 40 and stats.judge.failure_causes == {"unparseable": 40}
    assert stats.judge.retry_causes == {"http_500": 100, "unparseable": 80}
    assert stats.judge.requests == 2000 + 100 + 80 == len(stub.requests)
    assert stats.unscored_items == 40 and stats.dropped_samples == sum(e is None for e in expected) == 40
    assert 32 <= stub.max_in_flight <= 64
    print(f"2000 judgements in {elapsed:.1f}s, max in flight {stub.max_in_flight}")
