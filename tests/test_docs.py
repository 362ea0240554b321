"""The repository stands alone: no tracked file points at a document outside it, and every citation of the
specification, "docs/algorithm.md §N" (or "docs/algorithm.md §N, §M"), names a section docs/algorithm.md has
as a "## §N ..." heading. Any other "§" and a number must belong to such a citation, so none goes unchecked."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = "docs/algorithm.md"
# The design notes, specification and performance targets the project started from lived beside the
# repository; their content is now in docs/algorithm.md and benchmarks/README.md.
OUTSIDE = re.compile(r"\b(?:ALGORITHM|PERFORMANCE|DESIGN|PAPER_RESULTS)\.md\b|\.\./shared\b")
CITATION = re.compile(r"docs/algorithm\.md((?:,?\s+(?:and\s+)?§\d+)+)")
HEADING = re.compile(r"^## §(\d+) ", re.M)
SECTION = re.compile(r"§(\d+)")


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """path -> text of every file git tracks that reads as UTF-8 (binary files are left out)."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    found = {}
    for name in filter(None, listing.stdout.split("\0")):
        try:
            found[name] = (REPO / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):  # binary, or deleted in the work tree
            continue
    return found


def _spec(texts: dict[str, str]) -> str:
    assert SPEC in texts, f"{SPEC} is not tracked"
    return texts[SPEC]


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def test_nothing_points_outside_the_repository(texts):
    hits = [f"{name}:{_line(text, m.start())}: {m.group()}"
            for name, text in texts.items() for m in OUTSIDE.finditer(text)]
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits)


def test_the_sections_are_numbered_in_order(texts):
    numbers = [int(n) for n in HEADING.findall(_spec(texts))]
    assert numbers and numbers == list(range(1, len(numbers) + 1)), numbers


def test_every_cited_section_exists(texts):
    sections = {int(n) for n in HEADING.findall(_spec(texts))}
    cited, bad = 0, []
    for name, text in texts.items():
        if name == SPEC:  # its own cross-references are bare "§N"
            refs = [(m.start(), int(m.group(1))) for m in SECTION.finditer(text)]
        else:
            refs = [(m.start(), int(n)) for m in CITATION.finditer(text) for n in SECTION.findall(m.group(1))]
            cited += len(refs)
            covered = {i for m in CITATION.finditer(text) for i in range(*m.span())}
            bad += [f"{name}:{_line(text, m.start())}: {m.group()} is no '{SPEC} §N' citation"
                    for m in SECTION.finditer(text) if m.start() not in covered]
        bad += [f"{name}:{_line(text, at)}: §{n} is no section of {SPEC}" for at, n in refs if n not in sections]
    assert not bad, "\n".join(bad)
    assert cited, f"no citation of {SPEC} found: the pattern is broken"


TEST_CITATION = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?|(?<![\w/.])::(\w+)")


def test_every_cited_test_exists(texts):
    """A document that names a test as evidence ("tests/x.py::test_y", then "::test_z" for another test of
    the same file on that line) names one that is there: a renamed test must not leave its old name behind."""
    cited, bad = 0, []
    for name, text in texts.items():
        if not name.endswith(".md"):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            current = None
            for m in TEST_CITATION.finditer(line):
                path, function = (m.group(1), m.group(2)) if m.group(1) else (current, m.group(3))
                if path is None:
                    continue
                current, cited = path, cited + 1
                source = texts.get(path)
                if source is None:
                    bad.append(f"{name}:{number}: {path} is not tracked")
                elif function and not re.search(rf"^\s*(?:async )?def {function}\(", source, re.M):
                    bad.append(f"{name}:{number}: {path} has no test {function}")
    assert not bad, "\n".join(bad)
    assert cited, "no test citation found: the pattern is broken"
