"""tests/MUTANTS.md names, for each rule of the discipline, the tests that pin it: every name it
gives must be a test that exists, so the table cannot rot when tests are renamed or moved."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
NOTES = TESTS / "MUTANTS.md"
#: `file.py::name` or `tests/dir/file.py::name` starts a file; a bare `::name` continues it
REFERENCE = re.compile(r"`((?:tests/[\w/]+/)?[\w]+\.py)?::(\w+)`")


def cited() -> list[tuple[Path, str]]:
    table = NOTES.read_text().split("## Each rule of the discipline", 1)[1]
    found: list[tuple[Path, str]] = []
    for row in table.splitlines():
        if not row.startswith("| ") or row.startswith("| rule") or row.startswith("| ---"):
            continue
        current: Path | None = None
        for file, name in REFERENCE.findall(row):
            if file:
                current = TESTS.parent / file if file.startswith("tests/") else (
                    TESTS / "rules" / file)
            assert current is not None, f"::{name} names no file in: {row[:60]}"
            found.append((current, name))
    return found


def defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_rule_table_names_exists() -> None:
    references = cited()
    assert len(references) > 60
    missing = [f"{path.relative_to(TESTS.parent)}::{name}" for path, name in references
               if not path.exists() or name not in defined(path)]
    assert missing == []
