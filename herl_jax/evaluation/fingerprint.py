"""What an evaluation's stored records depend on, as one key: the weights' bytes and the settings that make
and grade the responses. A rerun resumes only the records made under the same key (store.py), so an
overwritten checkpoint or a changed setting is sampled again, never mixed into earlier numbers."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def files_fingerprint(path: Path) -> str:
    """sha256 over every regular file under `path` (or the file itself): relative name, size and content,
    in name order. Reads every byte: about a second per GB."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    log.info("weights fingerprint of %s: %s (%d files)", path, digest.hexdigest()[:12], len(files))
    return digest.hexdigest()


def source_fingerprint(source: str) -> str:
    """The fingerprint of a HF checkpoint folder, a .gguf file or a built-in model name's file."""
    from herl_jax.models.loading import resolve_source

    return files_fingerprint(resolve_source(source)[1])


def records_key(weights: str, settings: dict) -> str:
    """The key of one store's records: the weights' fingerprint and the settings (JSON-able) they depend on."""
    text = json.dumps({"weights": weights, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
