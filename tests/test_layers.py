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
    # helpers of every floor (the stdlib and errors only)
    "buckets": 0, "workdir_lock": 0, "own_files": 0, "chat_tokens": 0, "sections": 0, "lazy": 0,
    "parallel": 1, "rubrics": 1,
    "models": 2, "herl": 2, "data": 2,
    "sampling": 3,
    "learner": 4, "evaluation": 4,  # the policy update (device code and its host driver); evaluation
    "step": 5, "memory_plan": 5,  # one RL step: sample, score, revise, assemble, update; a run's memory plan
    "training": 6,  # the run's lifecycle: run config, trainer loop, checkpoints, logs, health
    "reporting": 7,  # the report over finished runs: an entry point's package
}
TOP = 7  # entry points and anything not listed (train.py, evaluate.py, config.py, ...)


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


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` (a package is its ``__init__``) -> the package's modules it imports, anywhere
    in it (a function-level import too). ``from P import name`` imports the submodule ``P.name`` when there is
    one, else ``P``; the parent package Python imports first is no edge of its submodules (it is imported once).
    Relative imports are refused: the code base has none, and the graph would miss them."""
    def name_of(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in sorted(package.rglob("*.py"))}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: relative import"
                imported |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                             for a in node.names}
        graph[name] = (imported & modules.keys()) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as [a, b, ..., a], or None (depth-first, in sorted order)."""
    done, path = set(), []

    def visit(node):
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for child in sorted(graph[node]):
            cycle = visit(child)
            if cycle:
                return cycle
        done.add(path.pop())
        return None

    return next((c for c in (visit(n) for n in sorted(graph)) if c), None)


def test_no_import_cycle_in_the_package():
    """A module can be imported first without half of another one being in place: no module imports, even
    inside a function, one that imports it back, through any chain."""
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_sees_function_level_imports_and_knows_submodules(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import A\n")
    (pkg / "a.py").write_text("from pkg import b\nclass A: pass\n")  # the submodule b, not pkg's __init__
    (pkg / "b.py").write_text("def f():\n    from pkg.a import A\n    return A\n")
    (pkg / "c.py").write_text("import pkg.b\nfrom pkg import A\n")
    assert import_graph(pkg) == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg", "pkg.b"}}
    assert find_cycle(import_graph(pkg)) == ["pkg.a", "pkg.b", "pkg.a"]
    (pkg / "b.py").write_text("def f():\n    return 1\n")
    assert find_cycle(import_graph(pkg)) is None


LONGEST_FUNCTION = 60  # lines, docstring included: the house rule (README, Architecture)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_is_longer_than_the_house_rule(path):
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, from line {node.lineno})"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]
    assert not long, f"{path.relative_to(PACKAGE)}: {long}"
