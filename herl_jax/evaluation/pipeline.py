"""One evaluation run: checkpoints x benchmarks -> per-item JSONL, summaries, and the report.

For each checkpoint and benchmark: Pass@1 (greedy), then, when configured and the benchmark has a
binary rubric, pass@k (sampling) and iterative guided revision (revision.py). A benchmark's items flow
one way through the stages, batch by batch, so that an interrupted run keeps every finished batch:

    data.load_benchmark (release_data.load_release) -> generate.generate_responses -> grade.grade_generations -> store (JSONL)
        -> summarize (the stored records) -> report (every checkpoint of the output folder)

Output layout:

    OUTPUT/LABEL/BENCHMARK/{pass1,passk,revision}.jsonl   per-item records (resumable)
    OUTPUT/LABEL/summary.json                             that checkpoint's numbers (a run updates the
                                                          benchmarks it ran and keeps the others)
    OUTPUT/results.{md,json}, passk.png, revision.png     every checkpoint in OUTPUT (report.py)

A benchmark graded by an LLM judge is skipped, with a message saying how to configure one, when no
judge is configured.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

from ml_collections import ConfigDict

from herl_jax.evaluation import summarize
from herl_jax.evaluation.config import EvalConfig, resolve
from herl_jax.evaluation.data import HELDOUT, RELEASE_FILES, BenchmarkItem, load_benchmark
from herl_jax.evaluation.fingerprint import records_key, source_fingerprint
from herl_jax.evaluation.generate import Policy, encode, fitted_to, generate_responses, length_sorted_batches
from herl_jax.evaluation.grade import JUDGED, ChatJudge, Grader, grade_generations
from herl_jax.evaluation.release_data import load_release
from herl_jax.evaluation.report import write_report
from herl_jax.evaluation.revision import RevisionConfig, revise
from herl_jax.evaluation.store import GradedRecords, ResultStore, sample_records, skipped_record
from herl_jax.own_files import child, write_file
from herl_jax.sampling import SamplingConfig
from herl_jax.models.config import ModelSection
from herl_jax.workdir_lock import EVALUATE_LOCK_NAME, WorkdirLock

log = logging.getLogger(__name__)

NO_JUDGE = ("{name} is graded by an LLM judge and no judge is configured, so it was skipped (not scored). "
            "Set --config.judge.base_url=URL --config.judge.model=MODEL and export the API key in "
            "$OPENAI_API_KEY (or the variable named by --config.judge.api_key_env).")


def parse_checkpoint(spec: str) -> tuple[str, str]:
    """(label, source) from `LABEL=SOURCE` or `SOURCE` (label: the file or folder name). A label holds no
    "/", so a path with "=" in it (runs/small/herl/seed=0/export) is a SOURCE."""
    label, sep, source = spec.partition("=")
    if sep and "/" not in label:
        return label, source
    path = Path(spec)
    return (path.stem if path.suffix == ".gguf" else path.name) or spec, spec


def evaluate(config: ConfigDict, checkpoints: Sequence[str], benchmarks: Sequence[str], output: str | Path,
             limit: int | None = None, load: Callable[[str, ModelSection], tuple] | None = None,
             fingerprint: Callable[[str], str] = source_fingerprint) -> dict[str, Path]:
    """Evaluates every checkpoint (`LABEL=SOURCE` or `SOURCE`, loaded when first sampled; none:
    config.model.source) and writes the report of `output`.

    load(source, model section) -> (model, tokenizer): how a SOURCE loads; default `load_source`.
    fingerprint(source): the weights' fingerprint its records are keyed by (fingerprint.py)."""
    run = resolve(config, benchmarks)
    load = load or load_source
    policies = [(label, source, Policy(lambda source=source: load(source, run.model)))
                for label, source in map(parse_checkpoint, checkpoints or [run.model.source])]
    return _evaluate(run, policies, output, limit, fingerprint)


def evaluate_policies(config: ConfigDict, policies: Sequence[tuple[str, str, Policy]], benchmarks: Sequence[str],
                      output: str | Path, limit: int | None = None) -> dict[str, Path]:
    """`evaluate` of policies already built: each (label, source, policy), its results under `output`/label;
    the caller's SOURCE string stands for the policy's weights in the records' key."""
    return _evaluate(resolve(config, benchmarks), policies, output, limit, fingerprint=str)


def _evaluate(run: EvalConfig, policies: Sequence[tuple[str, str, Policy]], output: str | Path,
              limit: int | None, fingerprint: Callable[[str], str]) -> dict[str, Path]:
    output = Path(output)
    folders = {label: child(output, label, "the checkpoint label") for label, _, _ in policies}  # before loading
    output.mkdir(parents=True, exist_ok=True)
    judge = ChatJudge(run.judge) if run.judge else None
    # One evaluation per output folder: two would interleave their records and overwrite each other's summary.
    with (WorkdirLock(output, EVALUATE_LOCK_NAME, "output folder"),
          Grader(judge, run.checkers.workers, run.checkers.check_time_limit_s) as grader):
        for label, source, policy in policies:
            path = folders[label] / "summary.json"
            summary = _earlier_summary(path, label, source)
            weights = fingerprint(source)
            for name in run.benchmarks:
                log.info("%s: %s", label, name)
                result = run_benchmark(name, run, limit, policy, grader, folders[label] / name, weights)
                summary["benchmarks"][name] = {**result, "date": datetime.date.today().isoformat(),
                                               "settings": _settings(run, limit, name)}
                _write_json(path, summary)
    return write_report(output)


def _earlier_summary(path: Path, label: str, source: str) -> dict:
    """The checkpoint's summary so far: a rerun keeps other benchmarks' results, of the same source only."""
    summary = {"label": label, "source": _canonical(source), "benchmarks": {}}
    if path.exists():
        earlier = json.loads(path.read_text())
        if earlier["source"] != summary["source"]:
            raise ValueError(f"{path.parent} holds results of {earlier['source']}, not of {source}: "
                             f"name this checkpoint's row with --checkpoint OTHER_LABEL={source}")
        summary["benchmarks"] = earlier["benchmarks"]
    return summary


def _canonical(source: str) -> str:
    """An existing path as an absolute path; a built-in name as it is."""
    return str(Path(source).resolve()) if Path(source).exists() else source


def load_source(source: str, model: ModelSection):
    """(model, tokenizer) of a HF checkpoint folder, a .gguf file or a built-in name, as the section says."""
    from herl_jax.models import load_policy

    return load_policy(source, dtype=model.dtype, attention_impl=model.attention_impl)


def run_benchmark(name: str, run: EvalConfig, limit: int | None, policy: Policy, grader: Grader,
                  folder: Path, weights: str) -> dict:
    """One benchmark's summary: Pass@1, and pass@k and guided revision when configured. ``weights``: the
    policy's fingerprint; each stage's records are keyed by it and the settings they depend on."""
    if name in JUDGED and grader.judge is None:
        message = NO_JUDGE.format(name=name)
        log.warning(message)
        return {"skipped": "no judge", "message": message}
    load = load_release if name in RELEASE_FILES else load_benchmark
    items = load(name, limit, _options(run, name))
    result, seconds = {}, {}
    start = time.monotonic()
    keys = _record_keys(run, name, weights)
    pass1 = collect(name, items, policy, grader, ResultStore(folder / "pass1.jsonl", keys["pass1"]), run.greedy,
                    run.batch_size, loose=True)
    result["pass@1"] = summarize.pass1(name, pass1, run.healthbench.bootstrap_samples)
    seconds["pass@1"] = time.monotonic() - start
    has_rubric = all(item.rubric is not None for item in items)
    if not has_rubric and (run.passk.n or run.revision.rounds):
        result["note"] = f"{name} has no binary rubric: no pass@k or guided revision"
    if has_rubric and run.passk.n:
        start = time.monotonic()
        passk_store = ResultStore(folder / "passk.jsonl", keys["passk"])
        passk = collect(name, items[:run.passk.limit or None], policy, grader, passk_store,
                        run.sampling.replace(n=run.passk.n), run.batch_size)
        result["pass@k"] = summarize.passk(passk, run.passk.ks, run.success_threshold)
        seconds["pass@k"] = time.monotonic() - start
        if run.revision.rounds:
            start = time.monotonic()
            result["revision"] = _revision(name, items[:run.revision.limit or None], run, policy, grader,
                                           ResultStore(folder / "revision.jsonl", keys["revision"]), passk_store)
            seconds["revision"] = time.monotonic() - start
    result["seconds_this_run"] = seconds
    return result


def collect(benchmark: str, items: Sequence[BenchmarkItem], policy: Policy, grader: Grader, store: ResultStore,
            config: SamplingConfig, batch_size: int, loose: bool = False) -> GradedRecords:
    """The stored records of `items` once every one is sampled and graded: a rerun grades again the stored
    responses of incomplete items and samples only the items without a record.

    batch_size: sequences per sampler call (prompts per call = batch_size // n, at least 1).
    loose: grade IFEval / IFBench in loose mode too.
    """
    plan = store.resume(items)
    for start in range(0, len(plan.regrade), batch_size):
        store.append(sample_records(grade_generations(grader, benchmark, plan.regrade[start:start + batch_size],
                                                      loose)))
    prompts = encode(policy, plan.fresh)
    store.append(skipped_record(p.item.id, f"prompt of {len(p.ids)} tokens > max_prompt_len {config.max_prompt_len}")
                 for p in prompts if len(p.ids) > config.max_prompt_len)
    fits = [p for p in prompts if len(p.ids) <= config.max_prompt_len]
    config = fitted_to(config, fits)
    start, done = time.monotonic(), 0
    for number, batch in enumerate(length_sorted_batches(fits, max(1, batch_size // config.n))):
        generations = generate_responses(policy, batch, config.replace(seed=config.seed + number))
        store.append(sample_records(grade_generations(grader, benchmark, generations, loose)))
        done += len(batch)
        log.info("%s: %d/%d items sampled (n=%d) and graded, %.0f s", benchmark, done, len(fits), config.n,
                 time.monotonic() - start)
    return store.results(items)


def _revision(name: str, items: Sequence[BenchmarkItem], run: EvalConfig, policy: Policy, grader: Grader,
              store: ResultStore, passk_store: ResultStore) -> dict:
    """Guided revision's curves, and pass@k / best-of-k at the same budget (k samples = k rounds) on the
    same items."""
    section = run.revision
    prompt = ConfigDict(section.prompt.to_dict())
    prompt.template = section.templates[name]
    revision_config = RevisionConfig(rounds=section.rounds, chains=section.chains,
                                     success_threshold=run.success_threshold,
                                     max_prompt_len=section.max_prompt_len, prompt=prompt)
    records = revise(name, items, policy, grader, store, run.sampling,
                     revision_config, run.batch_size)
    result = summarize.revision(GradedRecords.of(records), section.rounds, run.success_threshold)
    same = summarize.passk(passk_store.results(items), range(1, section.rounds + 1), run.success_threshold)
    return {**result, "pass@k": same.get("pass@k", {}), "best_of_k": same.get("best_of_k", {})}


def _record_keys(run: EvalConfig, benchmark: str, weights: str) -> dict[str, str]:
    """Each stage's records key: the weights, and what makes and grades that stage's responses (the limit
    only picks items, pass@k's ks only summarize, so neither is in a key)."""
    config = run.raw
    common = {"model": config.model.to_dict(), "options": _options(run, benchmark),
              "check_time_limit_s": config.checkers.check_time_limit_s,
              "judge_model": run.judge.model if run.judge else None}  # where it is served does not matter
    passk = {"sampling": config.sampling.to_dict(), "n": config.passk.n}
    return {"pass1": records_key(weights, {**common, "greedy": config.greedy.to_dict()}),
            "passk": records_key(weights, {**common, **passk}),
            "revision": records_key(weights, {**common, "sampling": config.sampling.to_dict(),
                                              "revision": {k: v for k, v in config.revision.to_dict().items()
                                                           if k != "limit"}})}


def _options(run: EvalConfig, name: str) -> dict | None:
    """The config section of a benchmark read from a file (heldout, a release's), as a dict; else None."""
    if name == HELDOUT:
        return dataclasses.asdict(run.heldout)
    return dataclasses.asdict(run.releases[name]) if name in run.releases else None


def _settings(run: EvalConfig, limit: int | None, benchmark: str) -> dict:
    """What the numbers depend on, as configured (no secrets: the judge's key never enters the config)."""
    config = run.raw
    return {"limit": limit, "model": config.model.to_dict(), "greedy": config.greedy.to_dict(),
            "sampling": config.sampling.to_dict(), "passk": config.passk.to_dict(),
            "revision": {k: v for k, v in config.revision.to_dict().items() if k != "prompt"},
            "success_threshold": config.success_threshold,
            **({benchmark: _options(run, benchmark)} if _options(run, benchmark) else {}),
            "judge": {"base_url": run.judge.base_url, "model": run.judge.model} if run.judge else None}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
