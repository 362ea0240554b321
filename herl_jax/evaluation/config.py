"""The evaluation config: every key `python -m herl_jax.evaluate` reads, with defaults, and its checks.

configs/evaluate.py returns `default_config()`; change any key with --config.KEY=VALUE.
"""

from __future__ import annotations

from ml_collections import ConfigDict

from herl_jax.errors import UserError
from herl_jax.herl import prompts


class EvalConfigError(UserError, ValueError):
    """An invalid value in the evaluation config; the message names the key."""


def default_config() -> ConfigDict:
    c = ConfigDict()
    # The policy: overridden per run by --checkpoint (a HF directory, a .gguf file or a built-in name).
    c.model = ConfigDict(dict(source="smollm2-135m-instruct", dtype="float32", attention_impl="auto"))
    # Sequences per sampler call (prompts per call = batch_size // samples per prompt, shortest prompts
    # first). They queue for the `decode_slots` rows decoded at once, so twice the slots keeps the slots
    # busy as rows stop; the prompts' KV cache grows with the prompts per call, the slots' with decode_slots.
    c.batch_size = 128
    # Sampler settings (herl_jax.sampling.SamplingConfig), in both dicts below: continuous batching decodes
    # at most `decode_slots` rows at once, a stopped row's slot taking the next queued one (0 = all of a
    # call's rows in one static batch), in jitted chunks of `decode_chunk` steps attending over a cache
    # window that grows in `cache_block`s. Greedy replies do not depend on them.
    slots = dict(decode_slots=64, decode_chunk=16, cache_block=64)
    # Pass@1, as in the paper: greedy decoding.
    c.greedy = ConfigDict(dict(max_new_tokens=1024, max_prompt_len=4096, prompt_bucket=64, **slots))
    # Sampled answers, for pass@k and for guided revision (the same settings: an equal-budget comparison).
    c.sampling = ConfigDict(dict(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=1024, max_prompt_len=4096,
                                 prompt_bucket=64, seed=0, **slots))
    # pass@k: `n` samples per prompt (0: off); reported for every k in `ks` up to n.
    c.passk = ConfigDict(dict(n=0, ks=(1, 2, 4, 8, 16, 32), limit=0))  # limit: first examples only (0: all)
    # Iterative guided revision (docs/algorithm.md §9) for `rounds` rounds (0: off), compared with pass@k for
    # k = 1..rounds on the same examples, so it needs passk.n >= rounds and a limit within passk's.
    c.revision = ConfigDict(dict(
        rounds=0, chains=1, limit=0,
        max_prompt_len=8192,  # revise prompt = template + instruction + feedback + draft
        templates=dict(ifeval="instruction", ifbench="instruction", heldout="instruction",  # per benchmark
                       healthbench="rubric"),
        prompt=prompts.default_config(),  # the revise prompt of training (herl.prompt)
    ))
    # The heldout benchmark: held-out prompts in a training data format with programmatic rubrics (hir,
    # ifeval), e.g. a run's validation file; `bundled:NAME` names a file shipped in herl_jax/data/bundled.
    c.heldout = ConfigDict(dict(file="", format="hir"))
    c.success_threshold = 1.0  # a sample succeeds (pass@k, revision stops) at a reward >= this (Eq. 4)
    c.checkers = ConfigDict(dict(workers=2, check_time_limit_s=5.0))
    # LLM judge for HealthBench and WritingBench: any OpenAI-compatible endpoint; base_url "" = none, and
    # those benchmarks are skipped. The key is read from the environment variable named by api_key_env.
    c.judge = ConfigDict(dict(base_url="", model="", api_key_env="OPENAI_API_KEY", max_concurrency=16,
                              max_retries=3, timeout_s=120.0, backoff_base_s=1.0, backoff_max_s=30.0,
                              max_retry_after_s=30.0, temperature=0.0, max_tokens=2048))
    c.healthbench = ConfigDict(dict(bootstrap_samples=1000))
    return c


def validate(c: ConfigDict) -> None:
    from herl_jax.sampling import SamplingConfig  # here: loading the config file does not import JAX

    def need(ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise EvalConfigError(f"config.{key}: {rule}")

    need(c.batch_size >= 1, "batch_size", "must be >= 1")
    for section in ("greedy", "sampling"):
        try:
            SamplingConfig(**c[section].to_dict())
        except ValueError as e:  # "FIELD=VALUE: rule"
            raise EvalConfigError(f"config.{section}.{e}") from None
    need(c.passk.n >= 0, "passk.n", "must be >= 0 (0 = off)")
    need(all(k >= 1 for k in c.passk.ks), "passk.ks", "every k must be >= 1")
    need(c.revision.rounds >= 0, "revision.rounds", "must be >= 0 (0 = off)")
    need(c.revision.chains >= 1, "revision.chains", "must be >= 1")
    if c.revision.rounds:
        need(c.passk.n >= c.revision.rounds, "passk.n",
             f"guided revision is compared with pass@k for k <= revision.rounds={c.revision.rounds}, "
             f"so passk.n must be >= {c.revision.rounds}")
        need(not c.passk.limit or 0 < c.revision.limit <= c.passk.limit, "revision.limit",
             f"must be within passk.limit={c.passk.limit} (the comparison uses the same examples)")
        unknown = set(c.revision.templates.values()) - set(c.revision.prompt.templates)
        need(not unknown, "revision.templates", f"unknown templates {sorted(unknown)}; known: "
             f"{sorted(c.revision.prompt.templates)}")
    if c.judge.base_url:
        need(bool(c.judge.model), "judge.model", "a judge needs a model name")
        from herl_jax.rubrics.config import JudgeConfig

        try:
            JudgeConfig(**c.judge.to_dict())
        except ValueError as e:
            raise EvalConfigError(f"config.judge: {e}") from None
    need(c.heldout.format in ("hir", "ifeval"), "heldout.format",
         "must be hir or ifeval (the data formats with programmatic rubrics)")
