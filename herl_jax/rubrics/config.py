"""Configuration of rubric scoring: the scorer's policies and the judge endpoint.

Both are frozen dataclasses built from the `rubrics` sub-config (an ml_collections ConfigDict or any
mapping) with `from_config`; unknown keys are errors, so a typo in a sweep fails at start-up.
"""

from __future__ import annotations

import dataclasses
import math
import re
import urllib.parse
from typing import Any

from herl_jax.rubrics.aggregate import NEGATIVE_WEIGHT_POLICIES, UNSCORED_POLICIES, NegativeWeights, UnscoredPolicy
from herl_jax.rubrics.judge_protocol import JUDGE_MODES, JudgeMode
from herl_jax.sections import check


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fields_of(cls, config: Any) -> dict[str, Any]:
    values = dict(config.to_dict() if hasattr(config, "to_dict") else config)
    unknown = values.keys() - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return values


@dataclasses.dataclass(frozen=True)
class JudgeConfig:
    """An OpenAI-compatible endpoint: OpenAI itself, or e.g. a vLLM server at http://host:8000/v1.

    One set of defaults serves every judge, training's (`rubrics.judge`) and evaluation's (`judge`): each
    asks for a short JSON verdict, so one request budget (retries, timeout, max_tokens) fits both."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the environment variable, never the key
    mode: JudgeMode = "per_response"  # or "per_criterion" (HealthBench grader style)
    max_concurrency: int = 16  # requests in flight at once
    max_retries: int = 2  # the public code gives up after 2 retries
    timeout_s: float = 60.0  # per request
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 30.0  # the longest a server's Retry-After (on 429/503) makes a retry wait
    temperature: float = 0.0
    max_tokens: int = 1024
    cache_path: str | None = None  # SQLite file; None: no cache

    def __post_init__(self):
        url = urllib.parse.urlparse(self.base_url) if isinstance(self.base_url, str) else None
        check(self, [
            (self.mode in JUDGE_MODES, "mode", f"expected one of {JUDGE_MODES}"),
            (url is not None and url.scheme in ("http", "https") and bool(url.netloc), "base_url",
             "expected an http(s) URL, e.g. https://api.openai.com/v1"),
            (isinstance(self.model, str) and bool(self.model.strip()), "model", "must name the judge model"),
            (_is_int(self.max_concurrency) and self.max_concurrency >= 1, "max_concurrency", "must be an integer >= 1"),
            (_is_int(self.max_retries) and self.max_retries >= 0, "max_retries", "must be an integer >= 0"),
            (_number(self.timeout_s) and self.timeout_s > 0, "timeout_s", "must be finite and > 0"),
            (_number(self.backoff_base_s) and self.backoff_base_s >= 0, "backoff_base_s", "must be finite and >= 0"),
            (_number(self.backoff_max_s) and self.backoff_max_s >= self.backoff_base_s, "backoff_max_s",
             "must be finite and >= backoff_base_s"),
            (_number(self.max_retry_after_s) and self.max_retry_after_s >= 0, "max_retry_after_s",
             "must be finite and >= 0"),
            (_number(self.temperature) and self.temperature >= 0, "temperature", "must be finite and >= 0"),
            (_is_int(self.max_tokens) and self.max_tokens >= 1, "max_tokens", "must be an integer >= 1"),
        ])
        # Not through `check`: its message repeats the value, and a value here that is no variable name is
        # most likely the key itself, which must never reach a log.
        if not (isinstance(self.api_key_env, str) and ENV_NAME.fullmatch(self.api_key_env)):
            raise ValueError("api_key_env: must be the NAME of the environment variable that holds the key "
                             "(letters, digits and _), not the key itself")

    @classmethod
    def from_config(cls, config: Any) -> JudgeConfig:
        return cls(**_fields_of(cls, config))


@dataclasses.dataclass(frozen=True)
class ScorerConfig:
    negative_weights: NegativeWeights = "healthbench"  # see aggregate.py for why this default
    unscored: UnscoredPolicy = "drop"
    workers: int = 2  # checker processes
    check_time_limit_s: float = 5.0  # per programmatic check
    loose: bool = False  # IFEval's loose mode instead of strict
    judge: JudgeConfig | None = None  # None: rubrics must be fully programmatic

    def __post_init__(self):
        check(self, [
            (self.negative_weights in NEGATIVE_WEIGHT_POLICIES, "negative_weights",
             f"expected one of {NEGATIVE_WEIGHT_POLICIES}"),
            (self.unscored in UNSCORED_POLICIES, "unscored", f"expected one of {UNSCORED_POLICIES}"),
            (isinstance(self.workers, int) and self.workers >= 1, "workers", "must be an integer >= 1"),
            (0 < self.check_time_limit_s < float("inf"), "check_time_limit_s", "must be > 0 and finite"),  # NaN fails
        ])

    @classmethod
    def from_config(cls, config: Any) -> ScorerConfig:
        """A `judge` sub-config, when present, becomes a JudgeConfig."""
        values = _fields_of(cls, config)
        if values.get("judge") is not None:
            try:
                values["judge"] = JudgeConfig.from_config(values["judge"])
            except ValueError as e:  # "FIELD=VALUE: rule" of the judge sub-section
                raise ValueError(f"judge.{e}") from None
        return cls(**values)
