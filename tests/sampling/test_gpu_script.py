"""benchmarks/gpu.sh --dry-run (tiny shapes on CPU) runs every part and writes its JSON and table, so the
GPU command cannot rot between GPU slots."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_dry_run(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, JAX_PLATFORMS="cpu")
    run = subprocess.run(["bash", "benchmarks/gpu.sh", "--dry-run", "--out", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert {"check_greedy", "check_bf16", "check_memory", "sampler", "train_step", "herl_step", "layout_decode",
            "layout_train"} <= set(report)
    assert all(report[k]["passed"] for k in ("check_greedy", "check_bf16", "check_memory"))
    # The layouts' measurements sit beside their predictions (on CPU the figures mean nothing).
    decode, train = report["layout_decode"], report["layout_train"]
    assert decode["measured_ms"] > 0 and decode["predicted_ms"] > 0 and decode["compiled_alias_gib"] > 0
    assert train["measured_s"] > 0 and train["flops_bound_s"] > 0
    table = (tmp_path / "gpu.md").read_text()
    assert table.startswith("| part | result |") and "FAIL" not in table
