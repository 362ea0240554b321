"""The judge with the real `openai` client against a scripted OpenAI-compatible server on 127.0.0.1."""

import logging
import re
import time

import pytest
from ml_collections import ConfigDict

from herl_jax.rubrics.config import JudgeConfig
from herl_jax.rubrics.judge import RubricJudge
from herl_jax.rubrics.judge_protocol import JudgeRequest
from herl_jax.rubrics.stats import JudgeStats

from .openai_stub import OpenAIStub, Reply, rubric_items, truthful_answer, user_text

SECRET = "sk-test-0123456789abcdef-secret"
ITEMS = ("MET states the dose", "UNMET cites a guideline", "MET is concise")
TRUTH = [True, False, True]


def script(request: dict, attempt: int) -> Reply:
    match = re.search(r"scenario=(\w+)", user_text(request))
    scenario = match.group(1) if match else "valid"
    answer = truthful_answer(request)
    replies = {
        "valid": Reply(content=answer),
        "fenced": Reply(content=f"```json\n{answer}\n```"),
        "chatty": Reply(content=f"Sure! My verdict: {answer}\nLet me know if you need more."),
        "wrong_length": Reply(content='{"results": [1]}'),
        "rate_limited_once": Reply(status=429) if attempt == 1 else Reply(content=answer),
        "server_error": Reply(status=500, content=f"upstream failed for Authorization: Bearer {SECRET}"),
        "bad_request": Reply(status=400, content=f"bad request with key {SECRET}"),
        "hang": Reply(content=answer, delay_s=2.0),
        "garbage": Reply(content="I think the response is fine overall."),
        "not_json": Reply(raw_body="<html>502 Bad Gateway</html>"),
        "slow": Reply(content=answer, delay_s=0.05),
    }
    return replies[scenario]


@pytest.fixture
def stub():
    with OpenAIStub(script) as stub:
        yield stub


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", SECRET)


def make_judge(stub, **overrides) -> RubricJudge:
    fields = dict(base_url=stub.base_url, model="judge-model", api_key_env="JUDGE_TEST_KEY",
                  timeout_s=0.5, backoff_base_s=0.01, max_retries=2)
    return RubricJudge(JudgeConfig(**{**fields, **overrides}))


def request(scenario: str, items=ITEMS) -> JudgeRequest:
    return JudgeRequest(prompt="How much paracetamol?", response=f"Answer text. scenario={scenario}", items=items)


def met(verdicts):
    return [v.met for v in verdicts]


def test_valid_fenced_and_chatty_answers_are_read(stub):
    stats = JudgeStats()
    out = make_judge(stub).judge_batch([request("valid"), request("fenced"), request("chatty")], stats)
    assert [met(v) for v in out] == [TRUTH] * 3
    assert (stats.calls, stats.requests, stats.retries, stats.failures) == (3, 3, 0, 0)
    assert (stats.prompt_tokens, stats.completion_tokens) == (3 * 11, 3 * 7)
    assert rubric_items(stub.requests[0]) == list(ITEMS)  # one call judged all three items, numbered


def test_wrong_length_list_is_a_failed_answer_after_retries(stub):
    stats = JudgeStats()
    (verdicts,) = make_judge(stub).judge_batch([request("wrong_length")], stats)
    assert met(verdicts) == [None, None, None]
    assert verdicts[0].reason == "judge failed after 3 attempt(s): wrong_length"
    assert (stats.requests, stats.retries, stats.failures) == (3, 2, 1)
    assert stats.retry_causes == {"wrong_length": 2} and stats.failure_causes == {"wrong_length": 1}


def test_rate_limit_then_success(stub):
    stats = JudgeStats()
    (verdicts,) = make_judge(stub).judge_batch([request("rate_limited_once")], stats)
    assert met(verdicts) == TRUTH
    assert (stats.requests, stats.retries, stats.failures) == (2, 1, 0)
    assert stats.retry_causes == {"http_429": 1}


def test_server_error_every_time_gives_up_after_backing_off(stub):
    stats = JudgeStats()
    start = time.monotonic()
    (verdicts,) = make_judge(stub, backoff_base_s=0.2).judge_batch([request("server_error")], stats)
    elapsed = time.monotonic() - start
    assert met(verdicts) == [None, None, None]
    assert (stats.requests, stats.failures) == (3, 1) and stats.failure_causes == {"http_500": 1}
    assert elapsed >= 0.1 + 0.2  # equal jitter: at least half of 0.2 s, then half of 0.4 s


def test_a_hang_past_the_timeout_is_retried_then_unscored(stub):
    stats = JudgeStats()
    start = time.monotonic()
    (verdicts,) = make_judge(stub, timeout_s=0.3).judge_batch([request("hang")], stats)
    assert met(verdicts) == [None, None, None]
    assert stats.retry_causes == {"timeout": 2} and stats.failure_causes == {"timeout": 1}
    assert time.monotonic() - start < 2.0  # three 0.3 s timeouts, not three 2 s hangs


def test_garbage_answers_and_bodies_are_failures(stub):
    stats = JudgeStats()
    out = make_judge(stub).judge_batch([request("garbage"), request("not_json")], stats)
    assert [met(v) for v in out] == [[None] * 3, [None] * 3]
    assert stats.failure_causes == {"unparseable": 1, "bad_response": 1}
    assert stats.requests == 6


def test_client_errors_are_not_retried(stub):
    stats = JudgeStats()
    (verdicts,) = make_judge(stub).judge_batch([request("bad_request")], stats)
    assert met(verdicts) == [None, None, None]
    assert (stats.requests, stats.retries) == (1, 0) and stats.failure_causes == {"http_400": 1}


def test_per_criterion_mode_makes_one_call_per_item(stub):
    stats = JudgeStats()
    (verdicts,) = make_judge(stub, mode="per_criterion").judge_batch([request("valid")], stats)
    assert met(verdicts) == TRUTH
    assert (stats.calls, stats.requests) == (3, 3)
    assert sorted(item for r in stub.requests for item in rubric_items(r)) == sorted(ITEMS)


def test_concurrency_is_bounded(stub):
    requests = [request("slow", items=(f"MET item {i}",)) for i in range(40)]
    out = make_judge(stub, max_concurrency=4).judge_batch(requests)
    assert all(met(v) == [True] for v in out)
    assert 2 <= stub.max_in_flight <= 4


def test_cache_makes_a_rerun_free_and_never_stores_failures(stub, tmp_path):
    cache = str(tmp_path / "judge.sqlite")
    batch = [request("valid"), request("chatty"), request("server_error")]
    first = make_judge(stub, cache_path=cache).judge_batch(batch)
    sent = len(stub.requests)
    stats = JudgeStats()
    again = make_judge(stub, cache_path=cache).judge_batch(batch, stats)  # a fresh judge: a resumed run
    assert [met(v) for v in again] == [met(v) for v in first] == [TRUTH, TRUTH, [None] * 3]
    assert len(stub.requests) - sent == 3  # only the failed call is asked again (1 + 2 retries)
    assert stats.cache_hits == 6 and stats.items == 9


def test_partly_cached_response_asks_only_for_the_new_items(stub, tmp_path):
    judge = make_judge(stub, cache_path=str(tmp_path / "judge.sqlite"))
    judge.judge_batch([request("valid", items=ITEMS[:1])])
    (verdicts,) = judge.judge_batch([request("valid", items=ITEMS)])
    assert met(verdicts) == TRUTH
    assert rubric_items(stub.requests[-1]) == list(ITEMS[1:])


def test_the_api_key_is_sent_but_never_logged_or_shown(stub, caplog):
    caplog.set_level(logging.DEBUG)  # the openai and httpx loggers included
    judge = make_judge(stub)
    out = judge.judge_batch([request("valid"), request("server_error"), request("bad_request")])
    assert stub.auth_headers and all(h == f"Bearer {SECRET}" for h in stub.auth_headers)
    shown = [r.getMessage() for r in caplog.records] + [repr(judge), repr(judge.config)]
    shown += [v.reason or "" for verdicts in out for v in verdicts]
    assert any("http_500" in line for line in shown)  # failures are reported ...
    assert not any(SECRET in line for line in shown)  # ... without the key the server echoed


def test_missing_key_variable_fails_fast_naming_the_variable(monkeypatch, stub):
    monkeypatch.delenv("JUDGE_TEST_KEY")
    with pytest.raises(RuntimeError, match=r"\$JUDGE_TEST_KEY"):
        make_judge(stub)


def test_config_from_ml_collections():
    config = JudgeConfig.from_config(
        ConfigDict({"base_url": "http://localhost:8000/v1", "model": "Qwen", "mode": "per_criterion"})
    )
    assert (config.model, config.mode, config.api_key_env) == ("Qwen", "per_criterion", "OPENAI_API_KEY")
    with pytest.raises(ValueError, match="api_key"):
        JudgeConfig.from_config({"base_url": "u", "model": "m", "api_key": SECRET})
    with pytest.raises(ValueError):
        JudgeConfig(base_url="u", model="m", mode="batch")
