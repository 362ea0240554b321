"""The benchmarks' own judge prompts sent to an OpenAI-compatible endpoint, many at once.

HealthBench and WritingBench grade with their own prompts (one call per rubric item or criterion),
not with the training judge's, so this client takes ready-made messages and a parser per call. The
endpoint settings, the retries with backoff and the stats are those of `herl_jax.rubrics` (its
`JudgeConfig` and retrying caller): a call whose answer cannot be parsed is retried, and one that
still fails returns its reason instead of a value. The API key is read from the environment variable
named in the config and never appears in outputs.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, Sequence

from herl_jax.rubrics import JudgeConfig
from herl_jax.rubrics.judge import JudgeCaller
from herl_jax.rubrics.stats import JudgeStats

Question = tuple[list[dict], Callable[[str | None], Any]]  # (chat messages, parser of the answer text)


class ChatJudge:
    def __init__(self, config: JudgeConfig):
        self.config = config
        self.stats = JudgeStats()
        self._api_key = os.environ.get(config.api_key_env)
        if not self._api_key:
            raise RuntimeError(f"the judge's API key is read from ${config.api_key_env}, which is not set "
                               "(for a local server without auth, set it to any value, e.g. EMPTY)")

    def __repr__(self) -> str:
        return f"ChatJudge(model={self.config.model!r}, base_url={self.config.base_url!r})"

    def ask(self, questions: Sequence[Question]) -> list[tuple[Any, str | None]]:
        """(parsed answer, None) or (None, why the call failed) for each question, in order."""
        return asyncio.run(self._ask(questions)) if questions else []

    async def _ask(self, questions: Sequence[Question]) -> list[tuple[Any, str | None]]:
        import openai  # only needed when a judge is configured

        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.config.base_url, max_retries=0,
                                    timeout=self.config.timeout_s)
        slots = asyncio.Semaphore(self.config.max_concurrency)
        async with client:
            call = JudgeCaller(client, self.config, slots, self.stats)
            return list(await asyncio.gather(*(call(messages, parse) for messages, parse in questions)))
