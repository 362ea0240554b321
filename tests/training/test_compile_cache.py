"""The persistent compilation cache (training/compile_cache.py): a second process loads what the first
compiled; an unusable directory only warns; "" is off; a cache JAX was already given is kept.

Each case runs in a fresh process: JAX reads its cache settings once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

PROGRAM = """
import json, logging, sys
import jax, jax.numpy as jnp
from jax._src import monitoring
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from herl_jax.training.compile_cache import enable_compilation_cache
hits = []
monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
used = enable_compilation_cache(sys.argv[1])
jax.jit(lambda x: jnp.sin(x) @ x.T + 1).lower(jnp.ones((64, 64))).compile()
print(json.dumps({"used": used, "hits": len(hits)}))
"""


def run(directory: str, **env) -> tuple[dict, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    environ.update(JAX_PLATFORMS="cpu", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", **env)
    done = subprocess.run([sys.executable, "-c", PROGRAM, directory], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "user" / "cache"  # made when missing
    first, _ = run(str(cache))
    assert first == {"used": str(cache), "hits": 0}
    assert any(cache.iterdir())
    second, _ = run(str(cache))
    assert second["used"] == str(cache) and second["hits"] >= 1  # the matmul, and the jnp.ones it was given


def test_an_unusable_directory_only_warns(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result, log = run(str(blocker / "cache"))
    assert result == {"used": None, "hits": 0}
    assert f"WARNING compilation cache off: trainer.compilation_cache_dir={blocker / 'cache'} cannot be written" in log


def test_empty_is_off_and_a_cache_set_outside_is_kept(tmp_path):
    assert run("")[0] == {"used": None, "hits": 0}
    outside = tmp_path / "outside"
    result, _ = run(str(tmp_path / "ignored"), JAX_COMPILATION_CACHE_DIR=str(outside))
    assert result["used"] == str(outside) and not (tmp_path / "ignored").exists()
