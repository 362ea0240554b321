"""The one scoring path of the step, `sample_and_score`: sample completions for a list of prompts, decode them,
score them. Rollouts, revisions and held-out validation all go through it.

A pipeline over pieces of the list (`trainer.score_overlap_chunks`): piece k is handed to a host thread for
scoring before piece k + 1 is sampled, so checker processes and judge calls run while the device samples; the
scores are collected once every piece is sampled. tests/trainer/test_overlap.py holds it to that order.

Several processes: piece k is every process's piece k, sampled as one batch on the mesh
(`parallel.joint_pieces`); each process decodes and scores only its own rows. Every process must take part in
every call, even with no prompts.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Sequence

from herl_jax import parallel
from herl_jax.herl import Sample
from herl_jax.learner.seeds import piece_seed
from herl_jax.rubrics import Rubric, RubricResult, Scorer
from herl_jax.sampling import SampleOutput, Sampler, SamplingConfig, decode_completions


@dataclasses.dataclass(frozen=True)
class ScoringTask:
    """What a completion of one prompt is scored against: the original task text and its rubric (a revision
    is scored against its ORIGINAL prompt's, Eq. 6)."""

    prompt: str
    rubric: Rubric


@dataclasses.dataclass(frozen=True)
class SampledPiece:
    """One sampler call's rows of this process: ``output`` holds the completions of its prompts ``first``,
    ``first + 1``, ... of this process's list (``output.prompt_index`` counts from ``first``), ``texts`` them
    decoded."""

    first: int
    output: SampleOutput
    texts: tuple[str, ...]

    def scored(self, results: Sequence[RubricResult], prompts: Sequence[Sequence[int]]) -> list[Sample]:
        """Each row with its result; ``prompts``: this process's prompt ids (the rows' contexts)."""
        out, samples = self.output, []
        for row, result in enumerate(results):
            p, n = self.first + int(out.prompt_index[row]), int(out.lengths[row])
            samples.append(Sample.scored(p, prompts[p], out.completion(row), out.logprobs[row, :n].tolist(),
                                         self.texts[row], result))
        return samples


@dataclasses.dataclass(frozen=True)
class ScoredBatch:
    """Every completion of one ``sample_and_score`` call, prompt-major (``n`` per prompt), with its timings.

    sample_seconds: device time; score_seconds: host scoring time; score_wait_seconds: of which the device
    sat idle, waiting for scores."""

    samples: tuple[Sample, ...]
    sample_seconds: float = 0.0
    score_seconds: float = 0.0
    score_wait_seconds: float = 0.0

    @property
    def generated_tokens(self) -> int:
        return sum(len(s.response_ids) for s in self.samples)


def sample_and_score(sampler: Sampler, scorer: Scorer, policy, tokenizer, prompts: Sequence[Sequence[int]],
                     tasks: Sequence[ScoringTask], sampling: SamplingConfig, pad_id: int,
                     chunks: int = 1) -> ScoredBatch:
    """Samples ``sampling.n`` completions of each of this process's ``prompts`` (token ids) in up to ``chunks``
    consecutive pieces and scores them against ``tasks[prompt]``; prompt-major. Each piece's scoring is
    handed over before the next piece is sampled, and runs while it samples. One piece reproduces an unchunked
    call exactly; piece k > 0 draws with its own seed (``seeds.piece_seed``)."""
    scoring: list[tuple[SampledPiece, concurrent.futures.Future]] = []
    sample_seconds = 0.0
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as scorer_thread:
        for k, piece in enumerate(parallel.joint_pieces(prompts, chunks)):
            start = time.perf_counter()
            out = sampler(policy, piece.items, sampling.replace(seed=piece_seed(sampling.seed, k)), pad_id=pad_id)
            sample_seconds += time.perf_counter() - start
            mine = out.prompts(piece.start, piece.stop)
            if len(mine.lengths):  # scored on the thread while the next iteration samples
                sampled = SampledPiece(piece.first, mine, tuple(decode_completions(tokenizer, mine)))
                scoring.append((sampled, scorer_thread.submit(_score, scorer, sampled, tasks)))
        wait_start = time.perf_counter()
        scored = [(sampled, *future.result()) for sampled, future in scoring]
        wait = time.perf_counter() - wait_start
    samples = tuple(s for sampled, results, _ in scored for s in sampled.scored(results, prompts))
    return ScoredBatch(samples, sample_seconds, sum(seconds for _, _, seconds in scored), wait)


def _score(scorer: Scorer, piece: SampledPiece, tasks: Sequence[ScoringTask]) -> tuple[list[RubricResult], float]:
    """The results of a piece's rows against their prompts' tasks, and the seconds they took."""
    start = time.perf_counter()
    rows = [piece.first + int(i) for i in piece.output.prompt_index]
    results = scorer.score_batch([tasks[r].prompt for r in rows], list(piece.texts), [tasks[r].rubric for r in rows])
    return results, time.perf_counter() - start
