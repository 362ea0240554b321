"""One HeRL step's experience (ALGORITHM.md §2): sample N -> score -> pick I_top -> revise -> score the
revisions -> assemble the groups. Host-side orchestration; the sampler does the device work.

Dropped samples (a rubric item left unscored under `unscored="drop"`) never enter a group; a group left
with fewer than two members, or a prompt too long for the sampler, is skipped. All of it is counted.

Several processes: each process passes its own share of the step's examples and does all host work for
them (scoring, choosing and revising candidates, assembling their groups). Sampling is global: each
sampler call gathers every process's prompts, in process order, and samples them as one batch on the
mesh; each process keeps its own rows. The finished experiences are then gathered, so every process
returns the same, whole step. Every group is thus decided once, by the process that owns its prompt.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import time
import zlib
from typing import Callable, Sequence

import jax
import numpy as np

from herl_jax import parallel
from herl_jax.data import Example
from herl_jax.herl import Sample, TrainingRecord, assemble_group, revise_prompt_ids, select_candidates
from herl_jax.herl.config import variant_from_config
from herl_jax.rubrics import RubricResult
from herl_jax.sampling import SampleOutput, SamplingConfig, encode_chats, generate, stop_ids_for


@dataclasses.dataclass
class StepCounts:
    """What happened to the prompts and samples of one step (summed into the step's metrics)."""

    prompts: int = 0
    skipped_long_prompts: int = 0
    dropped_samples: int = 0
    skipped_groups: int = 0  # fewer than two scored members
    zero_variance_groups: int = 0  # every member has the same reward: no policy gradient
    revised_groups: int = 0
    revisions: int = 0
    dropped_revisions: int = 0
    long_revise_prompts: int = 0
    fallback_groups: int = 0
    generated_tokens: int = 0
    revision_tokens: int = 0
    sample_seconds: float = 0.0
    score_seconds: float = 0.0  # host scoring time (overlaps sampling when the step is chunked)
    score_wait_seconds: float = 0.0  # of which the device sat idle, waiting for scores

    @classmethod
    def merge(cls, parts: Sequence[StepCounts]) -> StepCounts:
        """The counts of several processes' shares of one step: counts add up; times are the slowest's."""
        merged = cls()
        for field in dataclasses.fields(cls):
            values = [getattr(p, field.name) for p in parts]
            setattr(merged, field.name, max(values) if isinstance(values[0], float) else sum(values))
        return merged


@dataclasses.dataclass(frozen=True)
class Experience:
    """The step's training records and the numbers its metrics are made of."""

    records: tuple[TrainingRecord, ...]
    counts: StepCounts
    rewards: tuple[float, ...]  # scored original rollouts
    group_max: tuple[float, ...]  # per assembled group, before the bonus
    revision_gain: tuple[float, ...]  # per revised group: r̃* − max r
    bonus: tuple[float, ...]  # per candidate: α (r̃_i − r_i)

    @classmethod
    def merge(cls, parts: Sequence[Experience]) -> Experience:
        """Several processes' experiences of one step as one, in process order."""
        if len(parts) == 1:
            return parts[0]
        joined = {f.name: sum((getattr(p, f.name) for p in parts), ()) for f in dataclasses.fields(cls)
                  if f.name != "counts"}
        return cls(counts=StepCounts.merge([p.counts for p in parts]), **joined)


def texts_of(tokenizer, output: SampleOutput) -> list[str]:
    return [tokenizer.decode(output.completion(r), skip_special_tokens=True) for r in range(len(output.lengths))]


def collect_experience(policy, tokenizer, examples: Sequence[Example], scorer, cfg, seed: int,
                       pad_id: int, generate_fn: Callable[..., SampleOutput] = generate) -> Experience:
    """Runs one step's sampling, scoring and revision for `examples` (this process's share of the step);
    `cfg` is the whole train config. Returns the whole step's experience, the same on every process.

    `generate_fn(policy, prompts, sampling_config, pad_id=...)` does the device work: our sampler, or the
    PyTorch baseline's (third_party/torch_baseline/herl_step.py), so both share this host logic.
    """
    counts = StepCounts(prompts=len(examples))
    variant = variant_from_config(cfg.herl)
    stop = stop_ids_for(tokenizer, policy)
    prompts = encode_chats(tokenizer, [e.messages for e in examples])
    keep = [i for i, p in enumerate(prompts) if len(p) <= cfg.rollout.max_prompt_len]
    counts.skipped_long_prompts = len(prompts) - len(keep)
    examples, prompts = [examples[i] for i in keep], [prompts[i] for i in keep]
    # No early return for an empty share: every process must take part in every sampler call.

    n = cfg.rollout.n
    rollout = _sampling(cfg.rollout, n=n, seed=seed, stop=stop)
    out, texts, results = generate_and_score(
        policy, tokenizer, prompts, rollout, pad_id, counts, cfg.trainer.score_overlap_chunks,
        lambda rows, texts: scorer.score_batch([examples[r // n].prompt for r in rows], texts,
                                               [examples[r // n].rubric for r in rows]), generate_fn)
    counts.generated_tokens = int(out.lengths.sum())

    # Per prompt: the scored originals, and which of them to revise.
    groups = []
    revise_jobs = []  # (group index, candidate position, revise-prompt ids)
    for p, example in enumerate(examples):
        rows = [r for r in range(p * n, (p + 1) * n) if not results[r].dropped]
        counts.dropped_samples += n - len(rows)
        if len(rows) < 2:
            counts.skipped_groups += 1
            continue
        originals = [Sample(prompts[p], out.completion(r), results[r].score,
                            out.logprobs[r, : out.lengths[r]].tolist()) for r in rows]
        rewards = [s.reward for s in originals]
        candidates = select_candidates(rewards, cfg.herl, [len(results[r].satisfied) for r in rows])
        groups.append((example, originals, list(candidates)))
        prompt_cfg = _prompt_config(cfg.herl.prompt, example.template)
        for c in candidates:
            ids = revise_prompt_ids(tokenizer, example.instruction, results[rows[c]], texts[rows[c]], prompt_cfg)
            if len(ids) > cfg.revision.max_prompt_len:
                counts.long_revise_prompts += 1
                continue
            revise_jobs.append((len(groups) - 1, c, ids))

    revisions: dict[int, list[tuple[int, Sample]]] = {}
    if variant.revise:
        revised_examples = [groups[g][0] for g, _, _ in revise_jobs]  # scored against the original rubric
        revised, _, revised_results = generate_and_score(
            policy, tokenizer, [ids for _, _, ids in revise_jobs],
            _sampling(cfg.revision, n=1, seed=seed + 1, stop=stop), pad_id, counts,
            cfg.trainer.score_overlap_chunks,
            lambda rows, texts: scorer.score_batch([revised_examples[j].prompt for j in rows], texts,
                                                   [revised_examples[j].rubric for j in rows]),
            generate_fn)
        counts.revision_tokens = int(revised.lengths.sum())
        for j, ((g, c, ids), result) in enumerate(zip(revise_jobs, revised_results)):
            counts.revisions += 1
            if result.dropped:
                counts.dropped_revisions += 1
                continue
            sample = Sample(ids, revised.completion(j), result.score,
                            revised.logprobs[j, : revised.lengths[j]].tolist())
            revisions.setdefault(g, []).append((c, sample))

    records: list[TrainingRecord] = []
    rewards, group_max, gains, bonus = [], [], [], []
    for g, (example, originals, _) in enumerate(groups):
        scored = revisions.get(g, [])
        candidates = [c for c, _ in scored]
        # Seeded by the prompt itself, so a group's draws do not depend on which process assembles it.
        prompt_key = zlib.crc32(np.asarray(originals[0].context_ids, np.int32))
        rng = np.random.default_rng([cfg.trainer.seed, seed, prompt_key])
        group = assemble_group(originals, candidates, [s for _, s in scored], cfg.herl, rng)
        best = max(s.reward for s in originals)
        rewards += [s.reward for s in originals]
        group_max.append(best)
        if scored:
            counts.revised_groups += 1
            counts.fallback_groups += group.used_fallback
            gains.append(scored[group.best_revision][1].reward - best)
            bonus += [variant.alpha * (s.reward - originals[c].reward) for c, s in scored]
        if len({round(r.reward, 9) for r in group.records}) == 1:
            counts.zero_variance_groups += 1
        records += group.records
    mine = Experience(tuple(records), counts, tuple(rewards), tuple(group_max), tuple(gains), tuple(bonus))
    return Experience.merge(parallel.allgather_objects(mine))


def generate_and_score(policy, tokenizer, prompts: Sequence[Sequence[int]], sampling: SamplingConfig,
                       pad_id: int, counts: StepCounts, chunks: int,
                       score: Callable[[list[int], list[str]], list[RubricResult]],
                       generate_fn: Callable[..., SampleOutput] = generate):
    """Samples `sampling.n` completions per prompt and scores them; returns (SampleOutput, texts, results)
    for this process's `prompts`.

    The prompts are sampled in up to `chunks` consecutive pieces. While the device samples piece k + 1,
    a host thread scores piece k (checker processes, judge calls), so with a slow judge the device does
    not sit idle. `score(rows, texts)` gets the output rows' indices (prompt-major) and their texts.
    One piece reproduces an unchunked call exactly; piece k > 0 draws with its own seed.
    `generate_fn` does the device work: our sampler by default; the PyTorch baseline passes its own.

    Several processes: piece k is every process's piece k, in process order, sampled as one batch; each
    process decodes and scores only its own rows. Every process must call this, even with no prompts.
    """
    everyone = parallel.allgather_objects([list(p) for p in prompts])  # each process's prompts
    me, n = jax.process_index(), sampling.n
    pieces = min(chunks, max(len(p) for p in everyone))
    bounds = [np.linspace(0, len(p), pieces + 1).round().astype(int) for p in everyone]
    outputs, texts, pending = [], [], []

    def timed_score(rows, texts):
        start = time.perf_counter()
        try:
            return score(rows, texts)
        finally:
            counts.score_seconds += time.perf_counter() - start

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as scoring:
        for k in range(pieces):
            parts = [p[b[k] : b[k + 1]] for p, b in zip(everyone, bounds)]
            piece = sampling if k == 0 else sampling.replace(seed=_piece_seed(sampling.seed, k))
            with _timer(counts, "sample_seconds"):
                out = generate_fn(policy, [q for part in parts for q in part], piece, pad_id=pad_id)
            first = sum(len(part) for part in parts[:me])
            out = out.prompts(first, first + len(parts[me]))  # this process's rows
            rows = list(range(bounds[me][k] * n, bounds[me][k + 1] * n))
            outputs.append(out)
            texts += texts_of(tokenizer, out)
            if rows:
                pending.append(scoring.submit(timed_score, rows, texts[rows[0]:]))
        with _timer(counts, "score_wait_seconds"):
            results = [r for future in pending for r in future.result()]
    output = SampleOutput.concatenate(outputs) if outputs else SampleOutput.empty(sampling.max_new_tokens)
    return output, texts, results


def _piece_seed(seed: int, piece: int) -> int:
    """A seed for piece `piece` of a chunked step, independent of every other (seed, piece) pair."""
    return int(np.random.SeedSequence([seed, piece]).generate_state(1)[0] >> 1)


def validate_policy(policy, tokenizer, examples: Sequence[Example], scorer, cfg, pad_id: int,
                    success_threshold: float) -> dict[str, float]:
    """Greedy replies to held-out examples, scored: mean reward and success rate over scored replies.

    Every process passes the same `examples`; each scores its share (examples i with i % processes ==
    its index), sampled with the others' in one batch, and the scores are gathered."""
    mine = parallel.my_share(examples)
    prompts = encode_chats(tokenizer, [e.messages for e in mine])
    keep = [i for i, p in enumerate(prompts) if len(p) <= cfg.rollout.max_prompt_len]
    greedy = _sampling(cfg.rollout, n=1, seed=0, stop=stop_ids_for(tokenizer, policy)).replace(temperature=0.0)
    _, _, results = generate_and_score(
        policy, tokenizer, [prompts[i] for i in keep], greedy, pad_id, StepCounts(), 1,
        lambda rows, texts: scorer.score_batch([mine[keep[r]].prompt for r in rows], texts,
                                               [mine[keep[r]].rubric for r in rows]))
    results = [r for part in parallel.allgather_objects(results) for r in part]
    if not results:
        return {}
    scores = [r.score for r in results if not r.dropped]
    if not scores:
        return {"validation/dropped": float(len(results))}
    return {
        "validation/reward_mean": float(np.mean(scores)),
        "validation/success_rate": float(np.mean([s >= success_threshold for s in scores])),
        "validation/dropped": float(len(results) - len(scores)),
    }


@contextlib.contextmanager
def _timer(counts: StepCounts, field: str):
    start = time.perf_counter()
    yield
    setattr(counts, field, getattr(counts, field) + time.perf_counter() - start)


def _sampling(section, n: int, seed: int, stop: tuple[int, ...]) -> SamplingConfig:
    return SamplingConfig(n=n, max_new_tokens=section.max_new_tokens, temperature=section.temperature,
                          top_p=section.top_p, top_k=section.top_k, stop_token_ids=stop, seed=seed,
                          max_prompt_len=section.max_prompt_len, prompt_bucket=section.prompt_bucket)


def _prompt_config(prompt_cfg, template: str):
    """The revise-prompt config with the example's own template kind."""
    if prompt_cfg.template == template:
        return prompt_cfg
    cfg = prompt_cfg.copy_and_resolve_references()
    cfg.template = template
    return cfg
