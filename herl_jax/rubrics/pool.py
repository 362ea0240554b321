"""Programmatic checks in worker processes, each check under a hard time limit.

A checker can hang (a regex on a degenerate 4k-token response, langdetect on a huge one) inside C
code that no thread or signal can interrupt, so each check runs in a worker process and the parent
kills a worker whose check runs past `time_limit_s`, then starts a fresh one. A check that raises, times
out, or takes its worker down marks only its own item unscored (with the reason) and is counted: the
batch always completes. Workers come from a `forkserver` that has already imported the checkers, so a
replacement starts in milliseconds and never forks the trainer's threads (JAX, the judge).
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import multiprocessing.connection
import time
from typing import Sequence

from herl_jax.rubrics.stats import CheckStats
from herl_jax.rubrics.types import Check, ItemVerdict

_STARTUP_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class CheckJob:
    """One programmatic item on one response."""

    check: Check
    prompt: str
    response: str


def _short(error: BaseException) -> str:
    text = " ".join(str(error).replace("*", " ").split())
    return f"{type(error).__name__}: {text}"[:300]


def _worker_main(conn, loose: bool) -> None:
    from herl_jax.rubrics.instructions import run_check

    conn.send("ready")
    while (message := conn.recv()) is not None:
        index, job = message
        try:
            conn.send((index, run_check(job.check, job.prompt, job.response, loose), None))
        except Exception as error:  # a checker bug or bad kwargs: this item only
            conn.send((index, None, _short(error)))


class _Worker:
    def __init__(self, context, loose: bool):
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_conn, loose), daemon=True)
        self.process.start()
        child_conn.close()
        try:
            started = self.conn.poll(_STARTUP_TIMEOUT_S) and self.conn.recv() == "ready"
        except EOFError:  # the worker died while starting
            started = False
        if not started:
            self.stop()
            raise RuntimeError(
                f"a checker worker process did not start (exit code {self.process.exitcode}). Workers "
                "re-import the main module: run from a file (not stdin), and keep a script's work under "
                "`if __name__ == '__main__':`")
        self.job: int | None = None
        self.deadline = 0.0

    def stop(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


class CheckPool:
    """Runs `CheckJob`s on `workers` processes; results come back in input order."""

    def __init__(self, workers: int = 2, time_limit_s: float = 5.0, loose: bool = False):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers, self.time_limit_s, self.loose = workers, time_limit_s, loose
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["herl_jax.rubrics.pool", "herl_jax.rubrics.instructions"])
        self._pool: list[_Worker] = []

    def __enter__(self) -> CheckPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._pool:
            worker.stop()
        self._pool = []

    def run(self, jobs: Sequence[CheckJob], stats: CheckStats | None = None) -> list[ItemVerdict]:
        stats = CheckStats() if stats is None else stats
        if not jobs:
            return []
        start = time.monotonic()
        while len(self._pool) < min(self.workers, len(jobs)):
            self._pool.append(_Worker(self._context, self.loose))
        verdicts: list[ItemVerdict | None] = [None] * len(jobs)
        pending = collections.deque(range(len(jobs)))
        stats.checks += len(jobs)
        while pending or any(w.job is not None for w in self._pool):
            for worker in list(self._pool):
                if worker.job is None and pending:
                    self._dispatch(worker, pending, jobs, stats)
            busy = [w for w in self._pool if w.job is not None]
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = multiprocessing.connection.wait([w.conn for w in busy], timeout)
            for worker in busy:
                if worker.conn in ready:
                    self._collect(worker, verdicts, stats)
                elif time.monotonic() > worker.deadline:
                    verdicts[worker.job] = ItemVerdict(None, f"check exceeded its {self.time_limit_s:g}s time limit")
                    stats.timeouts += 1
                    self._replace(worker, stats)
        stats.seconds += time.monotonic() - start
        return verdicts

    def _dispatch(self, worker: _Worker, pending: collections.deque, jobs, stats: CheckStats) -> None:
        index = pending.popleft()
        try:
            worker.conn.send((index, jobs[index]))
        except OSError:  # the idle worker died: not this job's fault, so it goes back in line
            pending.appendleft(index)
            self._replace(worker, stats)
            return
        worker.job, worker.deadline = index, time.monotonic() + self.time_limit_s

    def _collect(self, worker: _Worker, verdicts: list, stats: CheckStats) -> None:
        try:
            index, met, error = worker.conn.recv()
        except (EOFError, OSError):
            verdicts[worker.job] = ItemVerdict(None, "checker process died")
            stats.errors += 1
            self._replace(worker, stats)
            return
        verdicts[index] = ItemVerdict(met, error)
        stats.errors += error is not None
        worker.job = None

    def _replace(self, worker: _Worker, stats: CheckStats) -> None:
        worker.stop()
        self._pool[self._pool.index(worker)] = _Worker(self._context, self.loose)
        stats.worker_restarts += 1
