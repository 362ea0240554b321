"""The checker pool: input order, and a check that raises, hangs or dies costs only its own item."""

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


def test_a_worker_that_dies_mid_check_costs_only_its_item():
    stats = CheckStats()
    with CheckPool(workers=1, time_limit_s=60.0) as pool:
        pool.run([CheckJob(NO_COMMA, "p", "warm up")])
        worker = pool._pool[0].process
        result = {}
        jobs = [SLOW, CheckJob(NO_COMMA, "p", "ok")]
        runner = threading.Thread(target=lambda: result.update(v=pool.run(jobs, stats)))
        runner.start()
        time.sleep(1.0)  # the worker is now inside the slow check
        os.kill(worker.pid, signal.SIGKILL)
        runner.join(timeout=30)
        assert [v.met for v in result["v"]] == [None, True]
        assert result["v"][0].reason == "checker process died"
        assert (stats.errors, stats.worker_restarts) == (1, 1)


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
