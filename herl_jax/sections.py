"""Config sections: frozen dataclasses that state each default and rule of a config section once.

A section's ConfigDict is its dataclass's defaults (`section_config`); its rules are `(ok, field, rule)`
triples checked by `check`, the one place a broken rule becomes `ValueError("FIELD=VALUE: RULE")`, which
the config resolvers (herl_jax.config, herl_jax.evaluation.config) report naming the key. Imports no JAX.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Iterable


def check(section: Any, rules: Iterable[tuple[bool, str, str]]) -> None:
    """Raises ValueError("FIELD=VALUE: RULE") for the first `(ok, field, rule)` that does not hold; VALUE
    is the section's attribute FIELD (a dotted FIELD, for a rule across sections, is looked up level by level)."""
    for ok, name, rule in rules:
        if not ok:
            raise ValueError(f"{name}={functools.reduce(getattr, name.split('.'), section)!r}: {rule}")


def section_config(section: Any, exclude: Iterable[str] = ()):
    """The ConfigDict of a section's dataclass instance: its fields and values, less `exclude` (fields that
    are derived, not configured)."""
    from ml_collections import ConfigDict

    skip = set(exclude)
    return ConfigDict({f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name not in skip})
