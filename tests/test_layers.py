"""The house rule (README, Architecture): each floor of herl_jax imports only floors below it, and within a floor
a package imports only itself (the top floor's entry points may share their CLI helpers). Read from the source's
import statements, so an upward import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "herl_jax"
FLOORS = {
    "errors": -1,  # UserError, the base of every floor's input errors: imports nothing
    "buckets": 0, "workdir_lock": 0,  # helpers of every floor (the stdlib and errors only)
    "parallel": 1, "rubrics": 1,
    "models": 2, "herl": 2, "data": 2,
    "sampling": 3,
    "training": 4, "evaluation": 4,
    "reporting": 5,  # the report over finished runs: an entry point's package
}
TOP = 5  # entry points and anything not listed (train.py, evaluate.py, config.py, ...)


def _unit(module: str) -> str:
    """herl_jax.training.trainer -> training; herl_jax.train -> train."""
    return module.split(".")[1] if module.count(".") else ""


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names if node.module == "herl_jax"}
    return {n for n in names if n.startswith("herl_jax.")}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    floor = FLOORS.get(here, TOP)
    bad = []
    for name in _imports(path):
        there = _unit(name)
        if there == here:
            continue
        if FLOORS.get(there, TOP) >= floor and floor < TOP:  # entry points may share top-level helpers
            bad.append(name)
    assert not bad, f"{path.relative_to(PACKAGE)} (floor {floor}) imports {sorted(bad)} from its floor or above"


def test_the_floors_cover_the_package():
    """Every subpackage has a floor (a new one must be placed deliberately)."""
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(FLOORS), sorted(packages - set(FLOORS))
