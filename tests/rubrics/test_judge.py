"""The judge with the real `openai` client against a scripted OpenAI-compatible server on 127.0.0.1."""

import email.utils
import logging
import re
import time

import pytest
from ml_collections import ConfigDict

from herl_jax.rubrics.config import JudgeConfig
from herl_jax.rubrics.judge import RubricJudge, retry_after_seconds
from herl_jax.rubrics.judge_protocol import JudgeRequest
from herl_jax.rubrics.stats import JudgeStats

from .openai_stub import OpenAIStub, Reply, rubric_items, truthful_answer, user_text

SECRET = "sk-test-0123456789abcdef-secret"
ITEMS = ("MET states the dose", "UNMET cites a guideline", "MET is concise")
TRUTH = [True, False, True]
HTTP_LOGGERS = ("openai", "httpx", "httpcore", "httpx2", "httpcore2")  # the client's, openai 1.x and 3.x


def _busy_once(attempt: int, status: int, retry_after: str, answer: str) -> Reply:
    """A refusal that says when to come back, then the answer."""
    return Reply(status=status, headers=(("Retry-After", retry_after),)) if attempt == 1 else Reply(content=answer)


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
        "retry_after_1s": _busy_once(attempt, 429, "1", answer),
        "retry_after_1h": _busy_once(attempt, 503, "3600", answer),
        "retry_after_date": _busy_once(attempt, 429, email.utils.formatdate(time.time() + 2, usegmt=True), answer),
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


def _gap_between_attempts(stub) -> float:
    """Seconds between the first and the second request, as the server saw them arrive."""
    assert len(stub.arrivals) == 2
    return stub.arrivals[1] - stub.arrivals[0]


def test_retry_after_seconds_is_honoured(stub):
    stats = JudgeStats()
    (verdicts,) = make_judge(stub, backoff_base_s=0.01).judge_batch([request("retry_after_1s")], stats)
    assert met(verdicts) == TRUTH
    assert _gap_between_attempts(stub) >= 1.0  # backoff alone would have waited about 0.01 s
    assert stats.retry_causes == {"http_429": 1} and stats.failures == 0


def test_retry_after_as_an_http_date_is_honoured(stub):
    (verdicts,) = make_judge(stub, backoff_base_s=0.01).judge_batch([request("retry_after_date")])
    assert met(verdicts) == TRUTH
    assert _gap_between_attempts(stub) >= 1.0  # the date is 2 s ahead, at one-second resolution


def test_retry_after_is_capped_by_the_config(stub):
    (verdicts,) = make_judge(stub, backoff_base_s=0.01, max_retry_after_s=0.5).judge_batch([request("retry_after_1h")])
    assert met(verdicts) == TRUTH
    assert 0.5 <= _gap_between_attempts(stub) < 5.0  # the server asked for an hour


def test_retry_after_header_values():
    now = 1_700_000_000.0
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds(email.utils.formatdate(now + 7, usegmt=True), now=now) == 7.0
    assert retry_after_seconds(email.utils.formatdate(now - 7, usegmt=True), now=now) == 0.0  # in the past
    assert retry_after_seconds("-4") == 0.0
    for value in (None, "", "soon", "nan", "Mon, 99 Foo 2026 99:99:99 GMT"):
        assert retry_after_seconds(value) is None


@pytest.fixture
def fresh_http_loggers():
    """The HTTP client loggers as an application that never touched them leaves them; restored after."""
    loggers = [logging.getLogger(name) for name in HTTP_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


def test_http_client_request_lines_stay_out_of_an_info_log(stub, caplog, fresh_http_loggers):
    caplog.set_level(logging.INFO)  # the trainer logs at INFO
    (verdicts,) = make_judge(stub).judge_batch([request("valid")])
    assert met(verdicts) == TRUTH and len(stub.requests) == 1
    assert not [r for r in caplog.records if r.name.startswith(HTTP_LOGGERS) or "HTTP Request" in r.getMessage()]


def test_an_http_client_log_level_the_application_set_is_kept(stub, caplog, fresh_http_loggers):
    caplog.set_level(logging.INFO)
    for name in HTTP_LOGGERS:  # someone wants to see the traffic
        caplog.set_level(logging.INFO, logger=name)
    make_judge(stub).judge_batch([request("valid")])
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)


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
    for name in (None, *HTTP_LOGGERS):  # the client's own loggers too, at their most verbose
        caplog.set_level(logging.DEBUG, logger=name)
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


@pytest.mark.parametrize("field, value", [
    ("base_url", "api.openai.com/v1"), ("base_url", "ftp://host/v1"), ("base_url", ""), ("model", " "),
    ("max_concurrency", 0), ("max_concurrency", 2.5), ("max_retries", -1), ("timeout_s", 0),
    ("timeout_s", float("nan")), ("backoff_base_s", float("inf")), ("backoff_max_s", 0.001),
    ("temperature", -0.5), ("max_tokens", 0), ("max_retry_after_s", float("inf")),
])
def test_each_judge_setting_is_validated_naming_its_key(field, value):
    fields = dict(base_url="http://localhost:8000/v1", model="m", backoff_base_s=0.01)
    with pytest.raises(ValueError, match=f"^{field}="):
        JudgeConfig(**{**fields, field: value})


def test_a_key_where_the_variable_name_belongs_is_refused_without_repeating_it():
    with pytest.raises(ValueError, match="^api_key_env: must be the NAME") as error:
        JudgeConfig(base_url="http://localhost:8000/v1", model="m", api_key_env=SECRET)
    assert SECRET not in str(error.value)
