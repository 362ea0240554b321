"""Rubric rewards (docs/algorithm.md §1, §6, §7): programmatic checkers, an LLM judge, and Eq. 4.

Modules, from the bottom up:
- `types`: rubric items, rubrics, verdicts and results (frozen dataclasses);
- `aggregate`: Eq. 4 and the negative-weight and unscored-item policies;
- `instructions`, `muldimif`, `nltk_data`: the IFEval / IFBench / MulDimIF-style checkers, offline;
- `pool`: checks in worker processes under a per-check time limit;
- `judge_protocol`, `judge`, `cache`: the LLM judge, its retries and its SQLite cache;
- `config`, `stats`, `scorer`: `RubricScorer.score_batch`, the entry point for the trainer (typed as `Scorer`).

Importing this package is cheap: the checkers (NLTK, langdetect) load in `instructions` and the
`openai` client in `judge`, only when used.
"""

from herl_jax.rubrics.aggregate import rubric_score
from herl_jax.rubrics.config import JudgeConfig, ScorerConfig
from herl_jax.rubrics.scorer import RubricScorer, Scorer
from herl_jax.rubrics.stats import ScoringStats
from herl_jax.rubrics.types import Check, ItemVerdict, Rubric, RubricItem, RubricResult

__all__ = [
    "Check",
    "ItemVerdict",
    "JudgeConfig",
    "Rubric",
    "RubricItem",
    "RubricResult",
    "RubricScorer",
    "Scorer",
    "ScorerConfig",
    "ScoringStats",
    "rubric_score",
]
