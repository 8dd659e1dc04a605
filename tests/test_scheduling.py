"""Every test file that asks for a shared session fixture is in its xdist work unit
(tests/conftest.py: SHARED_SESSION_FIXTURES), so `make pytest` builds the fixture on one worker only."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import _SCOPE_OF, LONGEST_UNITS, SHARED_SESSION_FIXTURES

ROOT = Path(__file__).parent.parent


def files_asking_for(fixture: str) -> set[str]:
    found = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            # a test, or a fixture of the file's own that a test asks for in its place
            if not node.name.startswith("test_") and not any("fixture" in ast.unparse(d) for d in node.decorator_list):
                continue
            if fixture in {a.arg for a in node.args.args}:
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_each_shared_fixture_lists_exactly_the_files_that_use_it() -> None:
    for fixture, paths in SHARED_SESSION_FIXTURES.items():
        assert files_asking_for(fixture) == set(paths), fixture


def test_each_of_the_longest_units_is_a_unit_of_the_suite() -> None:
    units = set(_SCOPE_OF.values()) | {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")}
    assert set(LONGEST_UNITS) <= units
    assert not set(LONGEST_UNITS) & set(_SCOPE_OF)  # a file of a shared unit is scheduled with it
