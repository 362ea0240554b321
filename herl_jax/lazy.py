"""Package exports imported when first read (PEP 562), so that importing a package's light module (its
config) does not import the package's JAX modules: loading a config file stays free of JAX and Flax."""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, modules: dict[str, tuple[str, ...]]) -> tuple[Callable[[str], object], list[str]]:
    """`(__getattr__, __all__)` for `package`'s __init__, from submodule -> the names it exports. A name is
    imported from its submodule when first read, then kept as the package's attribute. No name may be a
    submodule's name too (importing the submodule would set the attribute to the module)."""
    owner = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__, sorted(owner)
