"""Running a CLI as a user does, and what a user error must look like on its stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Lines a CLI may write before an error besides it: the trainer's log records (also in WORKDIR/train.log).
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) ")
# The trainer's progress bar (tqdm, named after the objective: herl_jax.learner.config.OBJECTIVES), whose updates
# the "\r" it writes makes lines of their own.
PROGRESS = re.compile(r"^(rl|sft|dpo): ")


def run(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python ARGS` in the repository root, as a subprocess."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str, status: int | None = None,
                          also: re.Pattern | None = None) -> str:
    """A failure (exit `status`, or any non-zero one) whose stderr is one `error: ...` line naming `needle`,
    besides log records (and lines matching `also`), and holds no traceback. Returns the line."""
    assert result.returncode != 0, result.stdout[-2000:]
    if status is not None:
        assert result.returncode == status, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not LOG_RECORD.match(line) and not (also and also.match(line))]
    assert len(lines) == 1, result.stderr[-4000:]
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    return lines[0]
