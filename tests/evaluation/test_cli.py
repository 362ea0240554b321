"""The command line and its config file: flags and --config overrides reach the run; bad values are named."""

import subprocess
import sys
from pathlib import Path

import pytest

from herl_jax.evaluation.config import EvalConfigError, default_config, validate

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
     "judge: max_retry_after_s"),
    ({"batch_size": 0}, "batch_size"),
    ({"greedy.decode_slots": -1}, "greedy.decode_slots"),
    ({"sampling.decode_chunk": 0}, "sampling.decode_chunk"),
])
def test_invalid_values_are_refused_naming_the_key(overrides, key):
    c = default_config()
    c.update_from_flattened_dict(overrides)
    with pytest.raises(EvalConfigError, match=f"config.{key}"):
        validate(c)
    validate(default_config())
