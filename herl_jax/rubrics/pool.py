"""Programmatic checks in worker processes, each check under a hard time limit.

A checker can hang (a regex on a degenerate 4k-token response, langdetect on a huge one) inside C
code that no thread or signal can interrupt, so each check runs in a worker process and the parent
kills a worker whose check runs past `time_limit_s`, then starts a fresh one. A check that raises or
times out marks only its own item unscored (with the reason) and is counted: the batch always completes.
A worker that dies under a check (killed from outside, out of memory) is replaced and the check run once
more; a second death leaves that item unscored. Workers come from a `forkserver` that has already
imported the checkers, so a replacement starts in milliseconds and never forks the trainer's threads.

Shutdown belongs to the parent. SIGINT and SIGTERM sent to the whole process group (Ctrl-C in a
terminal, SLURM's `scancel`) are ignored by the workers and the forkserver, so the trainer can finish
its step; workers exit when the parent closes the pool, and on their own when the parent dies (their
pipe reaches end of file).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import multiprocessing.resource_tracker
import multiprocessing.util
import signal
import time
from typing import Sequence

from herl_jax.rubrics.stats import CheckStats
from herl_jax.rubrics.types import Check, ItemVerdict

_STARTUP_TIMEOUT_S = 120.0
_PARENT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_RUNS_PER_JOB = 2  # a job whose worker dies is run once more


@dataclasses.dataclass(frozen=True)
class CheckJob:
    """One programmatic item on one response."""

    check: Check
    prompt: str
    response: str


def _short(error: BaseException) -> str:
    text = " ".join(str(error).replace("*", " ").split())
    return f"{type(error).__name__}: {text}"[:300]


@contextlib.contextmanager
def _parent_signals_blocked():
    """Blocks SIGINT/SIGTERM in this thread while a worker (or the forkserver) is started: a new process
    inherits the mask, so it cannot be killed by a group signal before it has set them to SIG_IGN."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)


def _worker_main(conn, loose: bool) -> None:
    for signum in _PARENT_SIGNALS:  # the parent decides when we stop
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)
    from herl_jax.rubrics.instructions import run_check

    try:
        conn.send("ready")
        while (message := conn.recv()) is not None:
            index, job = message
            try:
                conn.send((index, run_check(job.check, job.prompt, job.response, loose), None))
            except Exception as error:  # a checker bug or bad kwargs: this item only
                conn.send((index, None, _short(error)))
    except (EOFError, OSError):  # the parent is gone
        return


class _Worker:
    def __init__(self, context, loose: bool):
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_conn, loose), daemon=True)
        # The first start also launches the resource tracker, which unblocks SIGINT/SIGTERM once it has
        # spawned it; launched here first, it leaves the forkserver started under our mask below.
        multiprocessing.resource_tracker.ensure_running()
        with _parent_signals_blocked():
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
        self.process.kill()  # not terminate(): workers ignore SIGTERM
        self.process.join()
        self.conn.close()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()
    workers.clear()


class CheckPool:
    """Runs `CheckJob`s on `workers` processes; results come back in input order."""

    def __init__(self, workers: int = 2, time_limit_s: float = 5.0, loose: bool = False):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers, self.time_limit_s, self.loose = workers, time_limit_s, loose
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["herl_jax.rubrics.pool", "herl_jax.rubrics.instructions"])
        self._pool: list[_Worker] = []
        self._finalizer: multiprocessing.util.Finalize | None = None

    def __enter__(self) -> CheckPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for diagnostics and fault tests)."""
        return [worker.process.pid for worker in self._pool]

    def run(self, jobs: Sequence[CheckJob], stats: CheckStats | None = None) -> list[ItemVerdict]:
        stats = CheckStats() if stats is None else stats
        if not jobs:
            return []
        start = time.monotonic()
        self._start_workers(min(self.workers, len(jobs)))
        batch = _Batch(jobs, stats)
        stats.checks += len(jobs)
        while batch.pending or any(w.job is not None for w in self._pool):
            for worker in list(self._pool):
                if worker.job is None and batch.pending:
                    self._dispatch(worker, batch)
            busy = [w for w in self._pool if w.job is not None]
            if not busy:  # the idle workers were found dead and replaced: dispatch to the new ones
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = multiprocessing.connection.wait([w.conn for w in busy], timeout)
            for worker in busy:
                if worker.conn in ready:
                    self._collect(worker, batch)
                elif time.monotonic() > worker.deadline:
                    batch.verdicts[worker.job] = ItemVerdict(
                        None, f"check exceeded its {self.time_limit_s:g}s time limit")
                    stats.timeouts += 1
                    self._replace(worker, stats)
        stats.seconds += time.monotonic() - start
        return batch.verdicts

    def _start_workers(self, count: int) -> None:
        if self._finalizer is None or not self._finalizer.still_active():
            # Runs at garbage collection, at close(), and at interpreter exit before multiprocessing's own
            # cleanup, whose terminate() our SIGTERM-ignoring workers would outlive.
            self._finalizer = multiprocessing.util.Finalize(self, _stop_all, args=(self._pool,), exitpriority=10)
        while len(self._pool) < count:
            self._pool.append(_Worker(self._context, self.loose))

    def _dispatch(self, worker: _Worker, batch: _Batch) -> None:
        index = batch.pending.popleft()
        try:
            worker.conn.send((index, batch.jobs[index]))
        except OSError:  # the idle worker died: not this job's fault, so it goes back in line
            batch.pending.appendleft(index)
            self._replace(worker, batch.stats)
            return
        batch.runs[index] += 1
        worker.job, worker.deadline = index, time.monotonic() + self.time_limit_s

    def _collect(self, worker: _Worker, batch: _Batch) -> None:
        try:
            index, met, error = worker.conn.recv()
        except (EOFError, OSError):  # the worker died under its job
            if batch.runs[worker.job] < _RUNS_PER_JOB:
                batch.pending.appendleft(worker.job)
                batch.stats.reruns += 1
            else:
                batch.verdicts[worker.job] = ItemVerdict(
                    None, f"checker process died under this check {_RUNS_PER_JOB} times")
                batch.stats.errors += 1
            self._replace(worker, batch.stats)
            return
        batch.verdicts[index] = ItemVerdict(met, error)
        batch.stats.errors += error is not None
        worker.job = None

    def _replace(self, worker: _Worker, stats: CheckStats) -> None:
        worker.stop()
        self._pool[self._pool.index(worker)] = _Worker(self._context, self.loose)
        stats.worker_restarts += 1


class _Batch:
    """One `run`'s bookkeeping: the jobs, their verdicts so far, the queue, and how often each was sent."""

    def __init__(self, jobs: Sequence[CheckJob], stats: CheckStats):
        self.jobs, self.stats = jobs, stats
        self.verdicts: list[ItemVerdict | None] = [None] * len(jobs)
        self.pending = collections.deque(range(len(jobs)))
        self.runs: collections.Counter = collections.Counter()
