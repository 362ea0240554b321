"""The LLM judge: any OpenAI-compatible endpoint (OpenAI, vLLM, ...), called concurrently, never losing a sample.

Each judge call holds a slot of a bounded semaphore while its request is in flight; it is retried with
exponential backoff and jitter on HTTP 429, 5xx, timeouts, connection errors and unusable answers
(`judge_protocol.py`), up to `max_retries` times. Other HTTP errors (400, 401, 404, ...) fail at once.
A call that fails for good leaves its items unscored with a reason, for the unscored policy to handle
(`aggregate.py`). Answered items go to the SQLite cache (`cache.py`) when `cache_path` is set.

The API key is read from the environment variable *named* by `api_key_env`, and it is kept out of
the config, reprs, reasons and log lines: failures are reported by kind (`http_500`, `timeout`), never
by the server's error text, which may echo request headers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
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


class JudgeCaller:
    """One judge call with retries: returns (parsed answer, None), or (None, why it failed for good)."""

    def __init__(
        self, client: openai.AsyncOpenAI, config: JudgeConfig, slots: asyncio.Semaphore, stats: JudgeStats
    ):
        self.client, self.config, self.slots, self.stats = client, config, slots, stats

    async def __call__(self, messages: list[dict], parse: Callable[[str | None], Any]):
        self.stats.calls += 1
        cause = ""
        for attempt in range(1 + self.config.max_retries):
            if attempt:
                self.stats.retries += 1
                self.stats.retry_causes[cause] += 1
                log.debug("judge call retry %d after %s", attempt, cause)
                await asyncio.sleep(self._backoff(attempt))
            cause, retryable, answer = await self._attempt(messages, parse)
            if not cause:
                return answer, None
            if not retryable:
                break
        self.stats.failures += 1
        self.stats.failure_causes[cause] += 1
        reason = f"judge failed after {attempt + 1} attempt(s): {cause}"
        log.warning(reason)
        return None, reason

    async def _attempt(self, messages, parse) -> tuple[str, bool, Any]:
        """(failure cause or "", whether to retry, parsed answer)."""
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
                return "timeout", True, None
            except openai.APIConnectionError:
                return "connection", True, None
            except openai.APIStatusError as error:
                code = error.status_code
                return f"http_{code}", code == 429 or code >= 500, None
            except (openai.APIError, ValueError):  # e.g. a 200 whose body is not JSON
                return "bad_response", True, None
            except Exception as error:  # anything else the client raises costs this call, not the batch
                return f"error_{type(error).__name__}", True, None
        usage = getattr(completion, "usage", None)
        self.stats.prompt_tokens += getattr(usage, "prompt_tokens", None) or 0
        self.stats.completion_tokens += getattr(usage, "completion_tokens", None) or 0
        try:
            text = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError):  # a 200 that is not a chat completion
            return "bad_response", True, None
        try:
            return "", False, parse(text)
        except JudgeAnswerError as error:
            return error.kind, True, None

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random, capped."""
        delay = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)

