"""scripts/runs.sh, which scripts/table3.sh and offline_baselines.sh source: run_arm trains a run through
launch/sweep.py (here one real step of the tiny model), copies its light records beside it, deletes its
checkpoints, and on a machine without the run directory skips a run recorded as finished."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from herl_jax.reporting.runs import find_runs
from tests.cli.test_documented_commands import SMOKE_TRAIN_FLAGS

REPO = Path(__file__).resolve().parents[2]
RECORDED = {"config.json", "data.json", "git_revision.txt", "metrics.jsonl", "samples.jsonl", "FINISHED"}


def run_arm(root: Path, records: Path, env: dict, *flags: str) -> subprocess.CompletedProcess:
    script = 'set -euo pipefail; source scripts/runs.sh; run_arm herl 5 configs/small.py:herl "$@"'
    return subprocess.run(["bash", "-c", script, "run_arm", *flags], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=dict(env, ROOT=str(root), RECORDS=str(records), PYTHON=sys.executable))


@pytest.mark.slow
def test_a_finished_run_is_recorded_and_not_trained_again(tmp_path, tiny_checkpoint, subprocess_env):
    root, records = tmp_path / "runs", tmp_path / "records"
    flags = (f"--config.model.source={tiny_checkpoint}", *SMOKE_TRAIN_FLAGS)
    first = run_arm(root, records, subprocess_env, *flags)
    assert first.returncode == 0, first.stderr[-3000:]

    run, record = root / "herl" / "seed=5", records / "herl" / "seed=5"
    assert {p.name for p in record.iterdir()} == RECORDED
    assert (record / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
    assert not (run / "checkpoints").exists() and (run / "export").is_dir()  # the export stays for evaluation
    [recorded] = find_runs([records])  # the report reads the records as a finished run of its seed
    assert (recorded.status, recorded.steps_done, recorded.seed) == ("finished", 1, 5)

    shutil.rmtree(root)  # a new machine: the records are all that is left
    again = run_arm(root, records, subprocess_env, *flags)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is recorded as finished; skipped" in again.stdout
    assert not root.exists()
