"""The LLM judge: any OpenAI-compatible endpoint (OpenAI, vLLM, ...), called concurrently, never losing a sample.

Each judge call holds a slot of a bounded semaphore while its request is in flight; it is retried with
exponential backoff and jitter on HTTP 429, 5xx, timeouts, connection errors and unusable answers
(`judge_protocol.py`), up to `max_retries` times, waiting at least what a `Retry-After` header asks
(seconds or an HTTP date, capped by `max_retry_after_s`). Other HTTP errors (400, 401, ...) fail at once.
A call that fails for good leaves its items unscored with a reason, for the unscored policy to handle
(`aggregate.py`). Answered items go to the SQLite cache (`cache.py`) when `cache_path` is set.

The API key is read from the environment variable *named* by `api_key_env`, and it is kept out of
the config, reprs, reasons and log lines: failures are reported by kind (`http_500`, `timeout`), never
by the server's error text, which may echo request headers. The HTTP client's own per-request INFO lines
are kept out of the run's log (their loggers go to WARNING unless the application set them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import os
import random
import time
from typing import Any, Callable, Sequence

import openai

from herl_jax.rubrics.cache import JudgeCache, judgement_key
from herl_jax.rubrics.config import JudgeConfig
from herl_jax.rubrics.judge_protocol import (
    JudgeAnswerError,
    JudgeRequest,
    parse_criterion,
    parse_results,
    per_criterion_messages,
    per_response_messages,
)
from herl_jax.rubrics.stats import JudgeStats
from herl_jax.rubrics.types import ItemVerdict

log = logging.getLogger(__name__)

_HTTP_CLIENT_LOGGERS = ("openai", "httpx", "httpcore", "httpx2", "httpcore2")  # openai 1.x, then 3.x


def quiet_http_client_logs() -> None:
    """One INFO line per judge request would flood train.log: the HTTP client's loggers go to WARNING,
    unless the application has set their level itself (e.g. to DEBUG, to look at the traffic)."""
    for name in _HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """The wait a `Retry-After` header asks for (RFC 9110: delay-seconds or an HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP-date is always GMT
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds else None  # NaN: ignored


class RubricJudge:
    def __init__(self, config: JudgeConfig):
        self.config = config
        self._api_key = os.environ.get(config.api_key_env)
        if not self._api_key:
            raise RuntimeError(
                f"the judge's API key is read from ${config.api_key_env}, which is not set "
                "(for a local vLLM server without auth, set it to any value, e.g. EMPTY)"
            )
        self._cache = JudgeCache(config.cache_path) if config.cache_path else None
        quiet_http_client_logs()

    def __repr__(self) -> str:
        return f"RubricJudge(model={self.config.model!r}, base_url={self.config.base_url!r})"

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def judge_batch(
        self, requests: Sequence[JudgeRequest], stats: JudgeStats | None = None
    ) -> list[list[ItemVerdict]]:
        """Blocking form of `judge`, for callers without an event loop."""
        return asyncio.run(self.judge(requests, JudgeStats() if stats is None else stats))

    async def judge(self, requests: Sequence[JudgeRequest], stats: JudgeStats) -> list[list[ItemVerdict]]:
        """One verdict per item of each request, in input order."""
        client = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.config.base_url,
            max_retries=0,  # retries are ours: counted, with our backoff, on our list of causes
            timeout=self.config.timeout_s,
        )
        slots = asyncio.Semaphore(self.config.max_concurrency)
        async with client:
            call = JudgeCaller(client, self.config, slots, stats)
            return list(await asyncio.gather(*(self._judge_one(call, r, stats) for r in requests)))

    async def _judge_one(self, call: JudgeCaller, request: JudgeRequest, stats: JudgeStats) -> list[ItemVerdict]:
        keys = [judgement_key(self.config.model, request.prompt, request.response, i) for i in request.items]
        cached = self._cache.get_many(keys) if self._cache is not None else {}
        stats.items += len(keys)
        stats.cache_hits += sum(k in cached for k in keys)
        todo = [i for i, key in enumerate(keys) if key not in cached]
        fresh: dict[int, ItemVerdict] = {}
        if todo and self.config.mode == "per_response":
            items = [request.items[i] for i in todo]
            messages = per_response_messages(request.prompt, request.response, items)
            results, failure = await call(messages, lambda text: parse_results(text, len(items)))
            if failure:  # all items of the call are unscored
                fresh = {i: ItemVerdict(None, failure) for i in todo}
            else:
                fresh = {i: ItemVerdict(met) for i, met in zip(todo, results)}
        elif todo:
            calls = [
                call(per_criterion_messages(request.prompt, request.response, request.items[i]), parse_criterion)
                for i in todo
            ]
            answers = await asyncio.gather(*calls)
            fresh = {i: ItemVerdict(met, failure) for i, (met, failure) in zip(todo, answers)}
        if self._cache is not None:
            self._cache.put_many({keys[i]: v.met for i, v in fresh.items() if v.scored})
        return [ItemVerdict(cached[key]) if key in cached else fresh[i] for i, key in enumerate(keys)]


@dataclasses.dataclass(frozen=True)
class _Attempt:
    """What one request came to: an answer (`cause == ""`) or a failure, retryable or not."""

    cause: str = ""
    retryable: bool = False
    answer: Any = None
    retry_after_s: float | None = None  # what the server asked us to wait, when it said


class JudgeCaller:
    """One judge call with retries: returns (parsed answer, None), or (None, why it failed for good)."""

    def __init__(
        self, client: openai.AsyncOpenAI, config: JudgeConfig, slots: asyncio.Semaphore, stats: JudgeStats
    ):
        self.client, self.config, self.slots, self.stats = client, config, slots, stats
        quiet_http_client_logs()

    async def __call__(self, messages: list[dict], parse: Callable[[str | None], Any]):
        self.stats.calls += 1
        outcome = _Attempt()
        for attempt in range(1 + self.config.max_retries):
            if attempt:
                self.stats.retries += 1
                self.stats.retry_causes[outcome.cause] += 1
                log.debug("judge call retry %d after %s", attempt, outcome.cause)
                await asyncio.sleep(self._wait(attempt, outcome.retry_after_s))
            outcome = await self._attempt(messages, parse)
            if not outcome.cause:
                return outcome.answer, None
            if not outcome.retryable:
                break
        self.stats.failures += 1
        self.stats.failure_causes[outcome.cause] += 1
        reason = f"judge failed after {attempt + 1} attempt(s): {outcome.cause}"
        log.warning(reason)
        return None, reason

    async def _attempt(self, messages, parse) -> _Attempt:
        async with self.slots:
            self.stats.requests += 1
            try:
                completion = await asyncio.wait_for(
                    self.client.chat.completions.create(
                        model=self.config.model,
                        messages=messages,
                        temperature=self.config.temperature,
                        max_tokens=self.config.max_tokens,
                    ),
                    self.config.timeout_s,
                )
            except (openai.APITimeoutError, asyncio.TimeoutError):
                return _Attempt("timeout", True)
            except openai.APIConnectionError:
                return _Attempt("connection", True)
            except openai.APIStatusError as error:
                code = error.status_code
                return _Attempt(f"http_{code}", code == 429 or code >= 500,
                                retry_after_s=retry_after_seconds(error.response.headers.get("retry-after")))
            except (openai.APIError, ValueError):  # e.g. a 200 whose body is not JSON
                return _Attempt("bad_response", True)
            except Exception as error:  # anything else the client raises costs this call, not the batch
                return _Attempt(f"error_{type(error).__name__}", True)
        usage = getattr(completion, "usage", None)
        self.stats.prompt_tokens += getattr(usage, "prompt_tokens", None) or 0
        self.stats.completion_tokens += getattr(usage, "completion_tokens", None) or 0
        try:
            text = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError):  # a 200 that is not a chat completion
            return _Attempt("bad_response", True)
        try:
            return _Attempt(answer=parse(text))
        except JudgeAnswerError as error:
            return _Attempt(error.kind, True)

    def _wait(self, attempt: int, retry_after_s: float | None) -> float:
        """Exponential backoff with equal jitter (half fixed, half random, capped), but never less than the
        server's `Retry-After`, itself capped at `max_retry_after_s`."""
        delay = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        backoff = delay / 2 + random.uniform(0, delay / 2)
        if retry_after_s is None:
            return backoff
        return max(backoff, min(retry_after_s, self.config.max_retry_after_s))

