"""The trainer tests' fixtures (tiny random checkpoint, small data, shared compilation cache), reused here."""

from tests.trainer.conftest import compile_cache, hir_files, subprocess_env, tiny_checkpoint  # noqa: F401 (fixtures)
