"""The command line and its config file: flags and --config overrides reach the run; bad values are named."""

import subprocess
import sys
from pathlib import Path

import pytest

from herl_jax.evaluation.config import EvalConfigError, default_config, resolve

REPO = Path(__file__).resolve().parents[2]


def test_cli_runs_with_the_config_file_and_overrides(tmp_path):
    # Judged benchmarks without a judge: nothing is sampled, so the model is never loaded.
    result = subprocess.run(
        [sys.executable, "-m", "herl_jax.evaluate", "--config", str(REPO / "configs" / "evaluate.py"),
         "--benchmarks", "healthbench,writingbench", "--limit", "2", "--output", str(tmp_path),
         "--checkpoint", "base=smollm2-135m-instruct", "--config.passk.n=4", "--config.passk.ks=(1,2,4)"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| base | skipped (no judge) | skipped (no judge) |" in result.stdout
    summary = (tmp_path / "base" / "summary.json").read_text()
    assert '"n": 4' in summary and '"limit": 2' in summary
    assert not (tmp_path / "evaluate.lock").exists()  # released at the end


# Holds the output folder's lock the way a running evaluation does, until its stdin closes.
HOLDER = """
import sys
from herl_jax.workdir_lock import EVALUATE_LOCK_NAME, WorkdirLock
lock = WorkdirLock(sys.argv[1], EVALUATE_LOCK_NAME, "output folder").acquire()
print("HELD", flush=True)
sys.stdin.read()
"""


def test_a_second_evaluation_into_one_output_folder_is_refused(tmp_path):
    """Two evaluations into one --output would interleave their records: the second stops in one line,
    naming the first, before it loads a model; once the first is gone, the folder is free again."""
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    command = [sys.executable, "-m", "herl_jax.evaluate", "--benchmarks", "healthbench", "--limit", "1",
               "--checkpoint", "base=smollm2-135m-instruct", "--output", str(tmp_path)]
    try:
        assert holder.stdout.readline().strip() == "HELD"
        second = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert second.returncode == 1, second.stderr[-2000:]
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: output folder {tmp_path} is in use by pid {holder.pid} on host "), line
    assert "Traceback" not in second.stderr and not (tmp_path / "base").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "base" / "summary.json").exists()


@pytest.mark.parametrize("args, message, status", [
    (["--benchmarks", "ifeval,nosuch"], "error: --benchmarks: unknown benchmarks ['nosuch']", 2),
    (["--benchmarks", "ifeval", "--limit", "1", "--checkpoint", "x=/nonexistent/herl-ckpt"],
     "error: model source '/nonexistent/herl-ckpt'", 1),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message, status):
    result = subprocess.run([sys.executable, "-m", "herl_jax.evaluate", "--output", str(tmp_path), *args],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert result.returncode == status
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("overrides, key", [
    ({"revision.rounds": 4, "passk.n": 2}, "passk.n"),
    ({"revision.rounds": 2, "passk.n": 2, "passk.limit": 10, "revision.limit": 20}, "revision.limit"),
    ({"revision.rounds": 2, "passk.n": 2, "revision.templates.ifeval": "nope"}, "revision.templates"),
    ({"judge.base_url": "http://127.0.0.1:1/v1"}, "judge.model"),
    ({"judge.base_url": "http://127.0.0.1:1/v1", "judge.model": "m", "judge.max_retry_after_s": -1.0},
     "judge.max_retry_after_s"),
    ({"batch_size": 0}, "batch_size"),
    ({"greedy.decode_slots": -1}, "greedy.decode_slots"),
    ({"sampling.decode_chunk": 0}, "sampling.decode_chunk"),
])
def test_invalid_values_are_refused_naming_the_key(overrides, key):
    c = default_config()
    c.update_from_flattened_dict(overrides)
    with pytest.raises(EvalConfigError, match=f"config.{key}"):
        resolve(c)
    resolve(default_config())
