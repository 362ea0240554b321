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
import typing
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
    return _config_dict(type(section), {f.name: getattr(section, f.name) for f in dataclasses.fields(section)},
                        exclude)


def defaults_config(cls: type, exclude: Iterable[str] = (), **values: Any):
    """The ConfigDict of a section's dataclass defaults, without building one: for a section that is off
    until configured (`values` fill the fields without a default, e.g. an empty judge URL)."""
    return _config_dict(cls, {f.name: values[f.name] if f.name in values else f.default
                              for f in dataclasses.fields(cls)}, exclude)


def _config_dict(cls: type, values: dict[str, Any], exclude: Iterable[str]):
    """`values` less `exclude` as a ConfigDict. A None of a field typed `int | None`, `float | None`, `str | None`
    or `bool | None` becomes a placeholder of that type: None until set, and settable from the command line
    (`--config.train.loss.dual_clip_c=3`), which a plain None is not (ml_collections cannot type it)."""
    from ml_collections import ConfigDict

    skip, hints = set(exclude), typing.get_type_hints(cls)
    return ConfigDict({name: _settable(value, hints[name]) for name, value in values.items() if name not in skip})


def _settable(value: Any, hint: Any) -> Any:
    """`value`, or for a None whose `hint` is `T | None` with T a scalar type, a placeholder of T."""
    args = typing.get_args(hint)
    scalars = [a for a in args if a in (int, float, str, bool)]
    if value is None and type(None) in args and len(args) == 2 and len(scalars) == 1:
        from ml_collections import config_dict

        return config_dict.placeholder(scalars[0])
    return value


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
