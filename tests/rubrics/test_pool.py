"""The checker pool: input order, and a check that raises, hangs or dies costs only its own item."""

import contextlib
import os
import signal
import threading
import time

from herl_jax.rubrics.pool import CheckJob, CheckPool
from herl_jax.rubrics.stats import CheckStats
from herl_jax.rubrics.types import Check

NO_COMMA = Check("punctuation:no_comma")
SENTENCES = Check("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"})
SLOW = CheckJob(SENTENCES, "p", "Hi there. " * 400_000)  # Punkt over ~4 MB of text takes many seconds


def test_results_come_back_in_input_order(pool):
    responses = [("a, b" if i % 3 == 0 else "a b") for i in range(300)]
    verdicts = pool.run([CheckJob(NO_COMMA, "p", r) for r in responses])
    assert [v.met for v in verdicts] == [i % 3 != 0 for i in range(300)]


def test_a_raising_check_is_unscored_and_counted(pool):
    stats = CheckStats()
    bad = Check("length_constraints:number_words", {"num_words": "many", "relation": "at least"})
    jobs = [CheckJob(NO_COMMA, "p", "a b"), CheckJob(bad, "p", "a b"), CheckJob(NO_COMMA, "p", "a, b")]
    verdicts = pool.run(jobs, stats)
    assert [v.met for v in verdicts] == [True, None, False]
    assert verdicts[1].reason.startswith("TypeError")
    assert (stats.checks, stats.errors, stats.timeouts) == (3, 1, 0)


def test_a_check_past_the_time_limit_is_unscored_and_the_batch_goes_on():
    stats = CheckStats()
    with CheckPool(workers=2, time_limit_s=0.5) as pool:
        start = time.monotonic()
        jobs = [CheckJob(NO_COMMA, "p", "a b"), SLOW] + [CheckJob(NO_COMMA, "p", "a, b")] * 20
        verdicts = pool.run(jobs, stats)
        elapsed = time.monotonic() - start
        assert verdicts[1].met is None and "time limit" in verdicts[1].reason
        assert [v.met for v in verdicts[:1] + verdicts[2:]] == [True] + [False] * 20
        assert (stats.timeouts, stats.worker_restarts, stats.errors) == (1, 1, 0)
        assert elapsed < 5.0
        assert [v.met for v in pool.run([CheckJob(NO_COMMA, "p", "x")])] == [True]  # the replacement works


MEDIUM = CheckJob(SENTENCES, "p", "Hi there. " * 50_000)  # about 2 s of Punkt: long enough to be killed in


def _run_in_thread(pool, jobs, stats):
    result = {}
    runner = threading.Thread(target=lambda: result.update(v=pool.run(jobs, stats)))
    runner.start()
    return runner, result


def _kill_busy_worker(pool, avoid=()) -> int:
    """SIGKILLs the pool's worker once one that is not in `avoid` has been inside its check for 0.5 s."""
    deadline = time.monotonic() + 30
    while not (pids := [p for p in pool.worker_pids() if p not in avoid]) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def test_a_worker_killed_mid_check_is_replaced_and_the_check_run_again():
    stats = CheckStats()
    with CheckPool(workers=1, time_limit_s=60.0) as pool:
        runner, result = _run_in_thread(pool, [MEDIUM, CheckJob(NO_COMMA, "p", "ok")], stats)
        killed = _kill_busy_worker(pool)
        runner.join(timeout=60)
        assert [v.met for v in result["v"]] == [True, True]  # at least 3 sentences; no comma
        assert (stats.reruns, stats.worker_restarts, stats.errors) == (1, 1, 0)
        assert killed not in pool.worker_pids()


def test_a_check_whose_worker_dies_twice_is_unscored_not_guessed():
    stats = CheckStats()
    with CheckPool(workers=1, time_limit_s=60.0) as pool:
        runner, result = _run_in_thread(pool, [MEDIUM, CheckJob(NO_COMMA, "p", "ok")], stats)
        first = _kill_busy_worker(pool)
        _kill_busy_worker(pool, avoid={first})  # the replacement, running the same check again
        runner.join(timeout=60)
        assert [v.met for v in result["v"]] == [None, True]
        assert "died" in result["v"][0].reason
        assert (stats.reruns, stats.worker_restarts, stats.errors) == (1, 2, 1)


def test_workers_killed_at_random_moments_cost_no_wrong_verdict():
    """Every verdict is the right one or unscored with the reason: a dead worker never reads as a judgement."""
    stats = CheckStats()
    responses = [("a, b" if i % 2 else "Hi there. " * 10_000) for i in range(40)]
    jobs = [CheckJob(NO_COMMA if i % 2 else SENTENCES, "p", r) for i, r in enumerate(responses)]
    with CheckPool(workers=2, time_limit_s=60.0) as pool:
        runner, result = _run_in_thread(pool, jobs, stats)
        kills = 0
        while runner.is_alive():
            time.sleep(0.3)
            pids = pool.worker_pids()
            if pids and runner.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pids[kills % len(pids)], signal.SIGKILL)
                kills += 1
        runner.join()
    verdicts = result["v"]
    truth = [i % 2 == 0 for i in range(40)]  # ",": not met; ten thousand sentences: met
    unscored = [v for v in verdicts if v.met is None]
    assert all(v.met is None or v.met == t for v, t in zip(verdicts, truth))
    assert all("died" in v.reason for v in unscored) and len(unscored) == stats.errors
    assert kills >= 3 and stats.worker_restarts >= 1


def test_a_worker_that_cannot_start_is_a_clear_error():
    """Workers re-import the main module; a script piped to stdin cannot be, so they die at start."""
    import subprocess
    import sys

    script = ("from herl_jax.rubrics.pool import CheckJob, CheckPool\nfrom herl_jax.rubrics.types import Check\n"
              "CheckPool(workers=1).run([CheckJob(Check('punctuation:no_comma'), 'p', 'a b')])\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "RuntimeError: a checker worker process did not start" in done.stderr
    assert "not stdin" in done.stderr
