"""Config sections: frozen dataclasses that state each default and rule of a config section once.

A section's ConfigDict is its dataclass's defaults (`section_config`); its rules are `(ok, field, rule)`
triples checked by `check`, the one place a broken rule becomes `ValueError("FIELD=VALUE: RULE")`, and
`build_section` reports it naming the key (`config.SECTION.FIELD=VALUE: RULE`) in the resolver's error type
(herl_jax.config, herl_jax.evaluation.config). Imports no JAX.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Iterable


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


def defaults_config(cls: type, exclude: Iterable[str] = (), **values: Any):
    """The ConfigDict of a section's dataclass defaults, without building one: for a section that is off
    until configured (`values` fill the fields without a default, e.g. an empty judge URL)."""
    from ml_collections import ConfigDict

    skip = set(exclude)
    return ConfigDict({f.name: values[f.name] if f.name in values else f.default
                       for f in dataclasses.fields(cls) if f.name not in skip})


def build_section(error: type[Exception], name: str, build: Callable, values: Any):
    """`build(values)` (a dataclass as `build`: the section's keys as keyword arguments); its ValueError or
    TypeError raised as `error`, naming the key: "config.NAME.FIELD=VALUE: rule" (or "config.NAME: message")."""
    try:
        return build(**dict(values)) if isinstance(build, type) else build(values)
    except (ValueError, TypeError) as e:
        message = str(e)
        if re.match(r"[\w.]+=", message):  # "FIELD=VALUE: rule", possibly already under the section's name
            raise error(f"config.{message}" if message.startswith(name + ".")
                        else f"config.{name}.{message}") from None
        raise error(f"config.{name}: {message}") from None
