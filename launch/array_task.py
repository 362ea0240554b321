"""One task of a launch/sweep.py SLURM job array: execs the argv stored for it in the sweep's manifest.json.

  python launch/array_task.py ROOT/manifest.json TASK_ID

The argv is a JSON list, exec'd as it is: no shell reads it, so no value in it can split it or run anything.
"""

import json
import os
import shlex
import sys
from pathlib import Path


def main(manifest: str, task: str) -> None:
    argv = json.loads(Path(manifest).read_text())[int(task)]["argv"]
    print(f"array task {task}: {shlex.join(argv)}", flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(*sys.argv[1:])
