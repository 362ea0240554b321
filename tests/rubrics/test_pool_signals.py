"""SIGTERM / SIGINT sent to a whole process group, as SLURM's `scancel` and Ctrl-C in a terminal send them.

A real script in its own session (so the signal reaches only its group, never pytest) builds a checker
pool, scores in a loop, and on the signal finishes: it scores a second more (when a second signal comes)
and exits 0. The workers
must leave shutdown to it, and must be gone once it has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

SCRIPT = textwrap.dedent("""
    import json, signal, time
    from herl_jax.rubrics.pool import CheckJob, CheckPool
    from herl_jax.rubrics.stats import CheckStats
    from herl_jax.rubrics.types import Check

    def main():
        signals = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda s, frame: signals.append(s))
        responses = [("a, b" if i % 2 else "Hi there. " * 200) for i in range(200)]
        check = Check("punctuation:no_comma")
        stats, wrong, rounds, finish_by = CheckStats(), 0, 0, None
        with CheckPool(workers=2, time_limit_s=30.0) as pool:
            while finish_by is None or time.monotonic() < finish_by:
                verdicts = pool.run([CheckJob(check, "p", r) for r in responses], stats)
                wrong += sum(v.met is not ("," not in r) for v, r in zip(verdicts, responses))
                rounds += 1
                if rounds == 1:
                    first_workers = pool.worker_pids()
                    print("READY", flush=True)
                if signals and finish_by is None:  # finish: a second more of rounds on the same pool
                    finish_by = time.monotonic() + 1.0
            last_workers = pool.worker_pids()
        print(json.dumps({"signals": signals, "rounds": rounds, "wrong": wrong, "checks": stats.checks,
                          "restarts": stats.worker_restarts, "same_workers": first_workers == last_workers,
                          "workers": last_workers}))

    if __name__ == "__main__":
        main()
""")


def _kill_group(pgid: int) -> None:
    """Leaves nothing of a test's process group behind, whatever the test found."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead: only its exit status is left
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("signals", [("SIGTERM",), ("SIGINT",), ("SIGTERM", "SIGTERM"), ("SIGINT", "SIGINT")])
def test_a_group_signal_leaves_the_pool_working_and_the_script_exits_0(tmp_path, signals):
    script = tmp_path / "score_until_signalled.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        for name in signals:
            os.killpg(proc.pid, getattr(signal, name))  # the script, its workers and the forkserver
            time.sleep(0.2)
        out, err = proc.communicate(timeout=120)
    finally:
        _kill_group(proc.pid)
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["signals"] == [getattr(signal, name) for name in signals]
    assert report["rounds"] >= 2 and report["checks"] == 200 * report["rounds"]
    assert report["wrong"] == 0  # every check scored, each right: no item lost to the signal
    assert report["restarts"] == 0 and report["same_workers"]  # the workers ignored the signal
    deadline = time.monotonic() + 10
    while any(map(_alive, report["workers"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, report["workers"])), "checker workers outlived the script"


def test_workers_exit_by_themselves_when_their_parent_is_killed(tmp_path):
    """SIGKILL gives the parent no chance to close the pool: the workers see their pipe close and exit."""
    script = tmp_path / "hold_pool.py"
    script.write_text(textwrap.dedent("""
        import time
        from herl_jax.rubrics.pool import CheckJob, CheckPool
        from herl_jax.rubrics.types import Check

        if __name__ == "__main__":
            pool = CheckPool(workers=2)
            pool.run([CheckJob(Check("punctuation:no_comma"), "p", "a b")] * 4)
            print(*pool.worker_pids(), flush=True)
            time.sleep(600)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(map(_alive, workers))
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, workers))
    finally:
        _kill_group(proc.pid)



def test_a_pool_starting_under_repeated_group_signals_still_starts(tmp_path):
    """`scancel` during start-up: the signal reaches the forkserver and the workers while they start (the
    first start takes a second or more: the forkserver imports the checkers). Every one must survive it."""
    script = tmp_path / "start_under_signals.py"
    script.write_text(textwrap.dedent("""
        import signal, sys
        from herl_jax.rubrics.pool import CheckJob, CheckPool
        from herl_jax.rubrics.types import Check

        if __name__ == "__main__":
            signals = []
            signal.signal(signal.SIGTERM, lambda s, frame: signals.append(s))
            print("STARTING", flush=True)
            with CheckPool(workers=2) as pool:
                verdicts = pool.run([CheckJob(Check("punctuation:no_comma"), "p", r) for r in ("a b", "a, b")])
            print([v.met for v in verdicts], len(signals) > 0, flush=True)
            sys.stdin.read()  # exit once the test has stopped signalling (not while Python shuts down)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    done = threading.Event()

    def signal_until_done():  # a SIGTERM every 20 ms until the script has scored (or died)
        while not done.is_set() and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            time.sleep(0.02)

    signaller = threading.Thread(target=signal_until_done)
    try:
        assert proc.stdout.readline().strip() == "STARTING", proc.stderr.read()
        signaller.start()
        result = proc.stdout.readline().split()
        done.set()
        signaller.join()
        out, err = proc.communicate(timeout=120)
    finally:
        done.set()
        _kill_group(proc.pid)
    assert proc.returncode == 0, err
    assert result == ["[True,", "False]", "True"]
