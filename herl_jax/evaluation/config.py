"""The evaluation config: every key `python -m herl_jax.evaluate` reads, each section's defaults and rules on
its dataclass, and `resolve(config, benchmarks)`: the typed `EvalConfig`, checked once, before any model loads.

configs/evaluate.py returns `default_config()`; change any key with --config.KEY=VALUE.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

from ml_collections import ConfigDict

from herl_jax.errors import UserError
from herl_jax.evaluation.data import BENCHMARKS, HELDOUT, PAPER_BENCHMARKS, RELEASE_FILES
from herl_jax.herl import prompts
from herl_jax.rubrics.config import JudgeConfig, ScorerConfig
from herl_jax.sampling.config import SamplingConfig
from herl_jax.sections import build_section, check, defaults_config, section_config
from herl_jax.models.config import ModelSection


class EvalConfigError(UserError, ValueError):
    """An invalid value in the evaluation config; the message names the key."""


class BenchmarkError(ValueError):
    """--benchmarks names no benchmark or an unknown one, or heldout without its file (the CLI's usage error)."""


_section = functools.partial(build_section, EvalConfigError)

# Answers, greedy and sampled alike (an equal budget): up to 1,024 new tokens after prompts of up to 4,096.
ANSWERS = SamplingConfig(max_new_tokens=1024, max_prompt_len=4096)
_GREEDY = dict(n=1, temperature=0.0)  # Pass@1, as in the paper: greedy decoding, not configurable
_CALL = ("n", "stop_token_ids")  # set per sampler call, not configured


@dataclasses.dataclass(frozen=True)
class PassKSection:
    """pass@k: `n` samples per prompt (0: off), reported for every k in `ks` up to n, on the first `limit`
    examples (0: all)."""

    n: int = 0
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    limit: int = 0

    def __post_init__(self):
        check(self, [(self.n >= 0, "n", "must be >= 0 (0 = off)"),
                     (all(k >= 1 for k in self.ks), "ks", "every k must be >= 1")])


@dataclasses.dataclass(frozen=True)
class RevisionSection:
    """Iterative guided revision (docs/algorithm.md §9) for `rounds` rounds (0: off) of `chains` chains per
    prompt on the first `limit` examples (0: all), compared with pass@k for k = 1..rounds on the same examples."""

    rounds: int = 0
    chains: int = 1
    limit: int = 0
    max_prompt_len: int = 8192  # revise prompt = template + instruction + feedback + draft
    # The revise template of each benchmark with a binary rubric (a key of prompt.templates).
    templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(
        ifeval="instruction", ifbench="instruction", heldout="instruction", muldimif="instruction",
        healthbench="rubric"))
    prompt: Any = dataclasses.field(default_factory=prompts.default_config)  # training's revise prompt (herl.prompt)

    def __post_init__(self):
        unknown = sorted(set(self.templates.values()) - set(self.prompt.templates))
        check(self, [(self.rounds >= 0, "rounds", "must be >= 0 (0 = off)"),
                     (self.chains >= 1, "chains", "must be >= 1"),
                     (not self.rounds or not unknown, "templates",
                      f"unknown templates {unknown}; known: {sorted(self.prompt.templates)}")])


@dataclasses.dataclass(frozen=True)
class HeldoutSection:
    """The heldout benchmark: held-out prompts in a training data format with programmatic rubrics, e.g. a
    run's validation file; `bundled:NAME` names a file shipped in herl_jax/data/bundled."""

    file: str = ""
    format: str = "hir"

    def __post_init__(self):
        check(self, [(self.format in ("hir", "ifeval"), "format",
                      "must be hir or ifeval (the data formats with programmatic rubrics)")])


@dataclasses.dataclass(frozen=True)
class ReleaseSection:
    """A benchmark read from the user's copy of its public release: `file` in the release's own format
    (herl_jax/evaluation/release_data.py lists each benchmark's file and format)."""

    file: str = ""


@dataclasses.dataclass(frozen=True)
class GpqaSection(ReleaseSection):
    """GPQA: the options of each question in an order drawn from (shuffle_seed, its Record ID), recorded per item."""

    shuffle_seed: int = 0


@dataclasses.dataclass(frozen=True)
class LLMEvalMedSection(ReleaseSection):
    """LLMEval-Med: `judge_prompts` is the release's evaluate/Evaluate.py, whose five grading prompts the judge is
    asked with ("": evaluate/Evaluate.py of the release folder holding dataset/dataset.json)."""

    judge_prompts: str = ""


RELEASE_SECTIONS = {"muldimif": ReleaseSection, "llmeval_med": LLMEvalMedSection, "math500": ReleaseSection,
                    "gpqa": GpqaSection, "mmlu_pro": ReleaseSection}
RELEASE_FILE_NAMES = {"muldimif": "MulDimIF's Data/test.json", "llmeval_med": "LLMEval-Med's dataset/dataset.json",
                      "math500": "MATH-500's test.jsonl", "gpqa": "GPQA's gpqa_diamond.csv",
                      "mmlu_pro": "MMLU-Pro's data/test-00000-of-00001.parquet"}


@dataclasses.dataclass(frozen=True)
class HealthBenchSection:
    """HealthBench's summary."""

    bootstrap_samples: int = 1000  # resamples of the bootstrap standard error


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """The evaluation config, typed and checked (`resolve`); `raw` is the ConfigDict it came from."""

    raw: ConfigDict
    benchmarks: tuple[str, ...]
    model: ModelSection
    batch_size: int
    greedy: SamplingConfig  # one greedy answer per prompt
    sampling: SamplingConfig  # n = 1; pass@k and revision set theirs
    passk: PassKSection
    revision: RevisionSection
    heldout: HeldoutSection
    releases: Mapping[str, ReleaseSection]  # benchmark -> its section, for those read from a release's file
    success_threshold: float
    checkers: ScorerConfig  # its workers and check_time_limit_s
    judge: JudgeConfig | None  # None: no judge, judged benchmarks are skipped
    healthbench: HealthBenchSection


def default_config() -> ConfigDict:
    c = ConfigDict()
    # The policy: overridden per run by --checkpoint (a HF directory, a .gguf file or a built-in name).
    c.model = section_config(ModelSection(dtype="float32"), exclude=("remat",))
    # Sequences per sampler call (prompts per call = batch_size // samples per prompt, shortest prompts
    # first). They queue for the `decode_slots` rows decoded at once, so twice the slots keeps the slots
    # busy as rows stop; the prompts' KV cache grows with the prompts per call, the slots' with decode_slots.
    c.batch_size = 128
    # Sampler settings (herl_jax.sampling.SamplingConfig documents them; continuous batching by default).
    # Greedy replies do not depend on decode_slots, decode_chunk or cache_block.
    c.greedy = section_config(ANSWERS, exclude=(*_CALL, *_GREEDY, "top_k", "top_p", "seed"))
    # Sampled answers, for pass@k and for guided revision (the same settings: an equal-budget comparison).
    c.sampling = section_config(ANSWERS, exclude=_CALL)
    c.passk = section_config(PassKSection())
    c.revision = section_config(RevisionSection())
    c.heldout = section_config(HeldoutSection())
    # The benchmarks read from a local copy of their public release: --config.NAME.file=PATH.
    for name, section in RELEASE_SECTIONS.items():
        c[name] = section_config(section())
    c.success_threshold = 1.0  # a sample succeeds (pass@k, revision stops) at a reward >= this (Eq. 4)
    # Programmatic checks: worker processes and the time limit of one check, as in training.
    c.checkers = section_config(ScorerConfig(), exclude=("negative_weights", "unscored", "loose", "judge"))
    # LLM judge for HealthBench and WritingBench: any OpenAI-compatible endpoint (JudgeConfig's defaults);
    # base_url "" = none, and those benchmarks are skipped. The key is read from the environment variable
    # named by api_key_env.
    c.judge = defaults_config(JudgeConfig, exclude=("mode", "cache_path"), base_url="", model="")
    c.healthbench = section_config(HealthBenchSection())
    return c


def resolve(config: ConfigDict, benchmarks: Sequence[str] = PAPER_BENCHMARKS) -> EvalConfig:
    """The typed config for evaluating `benchmarks`; EvalConfigError names the key of an invalid value,
    BenchmarkError says what is wrong with `benchmarks`."""
    run = EvalConfig(
        raw=config, benchmarks=_checked_benchmarks(benchmarks, config),
        model=_section("model", ModelSection, config.model), batch_size=config.batch_size,
        greedy=_section("greedy", lambda c: SamplingConfig(**_GREEDY, **c), config.greedy),
        sampling=_section("sampling", SamplingConfig, config.sampling),
        passk=_section("passk", PassKSection, config.passk),
        revision=_section("revision", RevisionSection, config.revision),
        heldout=_section("heldout", HeldoutSection, config.heldout),
        releases={name: _section(name, section, config[name]) for name, section in RELEASE_SECTIONS.items()},
        success_threshold=config.success_threshold,
        checkers=_section("checkers", ScorerConfig, config.checkers),
        judge=_section("judge", JudgeConfig, config.judge) if config.judge.base_url else None,
        healthbench=_section("healthbench", HealthBenchSection, config.healthbench))
    rounds, passk = run.revision.rounds, run.passk
    try:
        check(config, [
            (run.batch_size >= 1, "batch_size", "must be >= 1"),
            (not config.judge.base_url or bool(config.judge.model), "judge.model", "a judge needs a model name"),
            (not rounds or passk.n >= rounds, "passk.n", f"guided revision is compared with pass@k for k <= "
             f"revision.rounds={rounds}, so passk.n must be >= {rounds}"),
            (not rounds or not passk.limit or 0 < run.revision.limit <= passk.limit, "revision.limit",
             f"must be within passk.limit={passk.limit} (the comparison uses the same examples)"),
        ])
    except ValueError as e:  # "KEY=VALUE: rule", KEY from the top of the config
        raise EvalConfigError(f"config.{e}") from None
    return run


def _checked_benchmarks(benchmarks: Sequence[str], config: ConfigDict) -> tuple[str, ...]:
    unknown = sorted(set(benchmarks) - set(BENCHMARKS))
    if unknown or not benchmarks:
        raise BenchmarkError(f"--benchmarks: {f'unknown benchmarks {unknown}' if unknown else 'no benchmark named'}; "
                             f"expected some of {list(BENCHMARKS)}")
    if HELDOUT in benchmarks and not config.heldout.file:
        raise BenchmarkError("--benchmarks heldout: name the held-out data file with --config.heldout.file=PATH "
                             "(bundled:NAME for a shipped file) and, if not hir, --config.heldout.format=ifeval")
    for name in (b for b in benchmarks if b in RELEASE_FILES and not config[b].file):
        raise BenchmarkError(f"--benchmarks {name}: name your copy of {RELEASE_FILE_NAMES[name]} with "
                             f"--config.{name}.file=PATH (the data are not shipped)")
    return tuple(benchmarks)
