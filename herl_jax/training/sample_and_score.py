"""The one scoring path of the step: sample completions for a list of prompts, decode them, score them.

`sample` yields the sampler's output piece by piece; `score` consumes the pieces, scoring piece k on a host
thread while the device samples piece k + 1 (checker processes and judge calls then overlap sampling). Rollouts,
revisions and held-out validation all go through these two functions.

Several processes: piece k is every process's piece k, gathered in process order and sampled as one batch on
the mesh; each process keeps, decodes and scores only its own rows. Every process must take part in every
call, even with no prompts.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Iterator, Sequence

from herl_jax import parallel
from herl_jax.rubrics import Rubric, RubricResult, Scorer
from herl_jax.sampling import SampleOutput, Sampler, SamplingConfig, decode_completions
from herl_jax.training.seeds import piece_seed

@dataclasses.dataclass(frozen=True)
class ScoringTask:
    """What a completion of one prompt is scored against: the original task text and its rubric (a revision
    is scored against its ORIGINAL prompt's, Eq. 6)."""

    prompt: str
    rubric: Rubric


@dataclasses.dataclass(frozen=True)
class ScoredSample:
    """One scored completion. ``prompt``: index of its prompt in the call's list; ``logprobs``: the sampler's
    log-prob of each response token."""

    prompt: int
    context_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    result: RubricResult

    @property
    def dropped(self) -> bool:
        return self.result.dropped


@dataclasses.dataclass(frozen=True)
class SampledPiece:
    """One sampler call's rows of this process: ``output`` holds the completions of its prompts ``first``,
    ``first + 1``, ... of this process's list (``output.prompt_index`` counts from ``first``), ``texts`` them
    decoded; ``seconds``: the call's wall time."""

    first: int
    output: SampleOutput
    texts: tuple[str, ...]
    seconds: float


@dataclasses.dataclass(frozen=True)
class ScoredBatch:
    """Every completion of one ``score`` call, prompt-major (``n`` per prompt), with its timings.

    sample_seconds: device time; score_seconds: host scoring time; score_wait_seconds: of which the device
    sat idle, waiting for scores."""

    samples: tuple[ScoredSample, ...]
    sample_seconds: float = 0.0
    score_seconds: float = 0.0
    score_wait_seconds: float = 0.0

    @property
    def generated_tokens(self) -> int:
        return sum(len(s.response_ids) for s in self.samples)


def sample(sampler: Sampler, policy, tokenizer, prompts: Sequence[Sequence[int]], sampling: SamplingConfig,
           pad_id: int, chunks: int = 1) -> Iterator[SampledPiece]:
    """Samples ``sampling.n`` completions per prompt of this process's ``prompts``, in up to ``chunks``
    consecutive pieces, lazily: piece k + 1 is sampled when the consumer asks for it. One piece reproduces an
    unchunked call exactly; piece k > 0 draws with its own seed (``seeds.piece_seed``)."""
    for k, piece in enumerate(parallel.joint_pieces(prompts, chunks)):
        start = time.perf_counter()
        out = sampler(policy, piece.items, sampling.replace(seed=piece_seed(sampling.seed, k)), pad_id=pad_id)
        seconds = time.perf_counter() - start
        mine = out.prompts(piece.start, piece.stop)
        yield SampledPiece(piece.first, mine, tuple(decode_completions(tokenizer, mine)), seconds)


def score(scorer: Scorer, pieces: Iterator[SampledPiece], prompts: Sequence[Sequence[int]],
          tasks: Sequence[ScoringTask]) -> ScoredBatch:
    """Scores every piece's completions against ``tasks[prompt]``; ``prompts`` are the token ids the pieces
    were sampled from (the samples' contexts). Piece k is scored on a host thread while piece k + 1 samples."""
    scored: list[ScoredSample] = []
    sample_seconds = score_seconds = 0.0

    def score_piece(piece: SampledPiece) -> list[RubricResult]:
        nonlocal score_seconds
        start = time.perf_counter()
        try:
            rows = [piece.first + int(i) for i in piece.output.prompt_index]
            return scorer.score_batch([tasks[r].prompt for r in rows], list(piece.texts),
                                      [tasks[r].rubric for r in rows])
        finally:
            score_seconds += time.perf_counter() - start

    pending = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as scoring:
        for piece in pieces:  # each iteration samples the next piece while the thread scores the last
            sample_seconds += piece.seconds
            if len(piece.texts):
                pending.append((piece, scoring.submit(score_piece, piece)))
        wait_start = time.perf_counter()
        for piece, future in pending:
            out = piece.output
            for row, result in enumerate(future.result()):
                p = piece.first + int(out.prompt_index[row])
                n = int(out.lengths[row])
                scored.append(ScoredSample(p, tuple(prompts[p]), tuple(out.completion(row)),
                                           tuple(out.logprobs[row, :n].tolist()), piece.texts[row], result))
        wait = time.perf_counter() - wait_start
    return ScoredBatch(tuple(scored), sample_seconds, score_seconds, wait)
