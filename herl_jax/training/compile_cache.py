"""JAX's persistent compilation cache for training runs: a rerun, a resumed run and a sweep's other runs
load the programs an earlier process compiled instead of compiling them again (at the paper's shapes a
prefill or decode program takes 6-11 s to compile on a 2-core CPU: benchmarks/RESULTS.md).

The directory is `trainer.compilation_cache_dir` (default: per user, under ~/.cache; "" turns it off). A
cache JAX was already given (JAX_COMPILATION_CACHE_DIR, or jax.config in the same process) is kept. A
directory that cannot be made or written only warns: the run goes on compiling everything itself, and so
does a later write that fails (JAX warns about it and carries on).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import jax

log = logging.getLogger(__name__)

# A size limit also turns on JAX's file lock around each cache read and write, so that a sweep's processes
# sharing the directory never read an entry another is still writing.
MAX_BYTES = 32 << 30


def enable_compilation_cache(directory: str) -> str | None:
    """Turns the cache on in `directory` (expanded; made if missing); returns the directory in use, or None
    when it is off or cannot be used."""
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        log.info("compilation cache: %s (set outside the config)", configured)
        return configured
    if not directory:
        return None
    path = Path(os.path.expanduser(directory))
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        log.warning("compilation cache off: trainer.compilation_cache_dir=%s cannot be written (%s); every "
                    "program compiles in this run", directory, e.strerror or e)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    log.info("compilation cache: %s", path)
    return str(path)
