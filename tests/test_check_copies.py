"""Deliberate copies stay copies, as diffusers' ``utils/check_copies.py`` keeps them: a function or class preceded by

    # Copied from dataigm.<module>.<name>[ with Old->New[, Old2->New2]]

must be the original's source (dedented), with each name ``Old`` replaced by ``New``. Copy rather than import only where an
import would cross a boundary (``core`` importing a stage, a light module importing a heavy one); say why beside it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dataigm"
MARKER = re.compile(r"^\s*# Copied from (dataigm(?:\.\w+)+)(?: with (.+))?$")


def original_source(dotted: str) -> str:
    """The dedented source of ``dataigm.module.Name`` or ``dataigm.module.Class.method``."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return textwrap.dedent(inspect.getsource(obj))
    raise LookupError(f"{dotted}: no such module")


def copies_in(source: str) -> list[tuple[int, str, str, str]]:
    """(marker line, target, replacements, the copy's dedented source) for every marked definition in ``source``."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            m = MARKER.match(lines[first - 2]) if first >= 2 else None
            if m:
                copy = textwrap.dedent("\n".join(lines[first - 1 : node.end_lineno]) + "\n")
                found.append((first - 1, m[1], m[2] or "", copy))
    return found


def expected_copy(original: str, replacements: str) -> str:
    for pair in filter(None, (p.strip() for p in replacements.split(","))):
        old, new = (s.strip() for s in pair.split("->"))
        original = re.sub(rf"\b{re.escape(old)}\b", new, original)  # whole names only
    return original


def check_copies(files: list[Path]) -> list[str]:
    """One line per copy that differs from its original (empty when all are in sync)."""
    problems = []
    for path in files:
        for line, target, replacements, copy in copies_in(path.read_text()):
            if copy != expected_copy(original_source(target), replacements):
                problems.append(f"{path}:{line}: differs from {target}")
    return problems


def test_every_marked_copy_matches_its_original() -> None:
    assert check_copies(sorted(PACKAGE.rglob("*.py"))) == []


def test_the_checker_sees_a_copy_drift(tmp_path: Path) -> None:
    from dataigm.core.errors import one_line

    original = original_source("dataigm.core.errors.one_line")
    synced = tmp_path / "synced.py"
    synced.write_text("# Copied from dataigm.core.errors.one_line with one_line->single_line\n"
                      + original.replace("one_line", "single_line"))
    drifted = tmp_path / "drifted.py"
    drifted.write_text("# Copied from dataigm.core.errors.one_line\n" + original.replace("split()", "split(' ')"))
    assert one_line("a\n b") == "a b"
    assert [c[1] for c in copies_in(synced.read_text())] == ["dataigm.core.errors.one_line"]
    assert check_copies([synced, drifted]) == [f"{drifted}:1: differs from dataigm.core.errors.one_line"]


@pytest.mark.parametrize("replacements, expected", [("", "def f(): return 1\n"), ("f->g, 1->2", "def g(): return 2\n")])
def test_replacements(replacements: str, expected: str) -> None:
    assert expected_copy("def f(): return 1\n", replacements) == expected
