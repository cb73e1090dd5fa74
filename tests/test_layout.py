"""The package stays readable in pieces: no module over 600 lines, no class over 300, no function over 60.

Sizes are counted with `ast` (a class or function from its `def`/`class` line to its last line,
end_lineno - lineno + 1, decorators not counted; a module by its lines). Generated tables (a module
whose docstring says "do not edit") are left out: nobody reads them as code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "facecluster"

MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60

# Exceptions, each with its size now: an entry may only shrink. "path" is a module, "path:name" a
# class or function in it. None today; add one only with a reason beside it.
KNOWN: dict[str, int] = {}


def _generated(tree: ast.Module) -> bool:
    return "do not edit" in (ast.get_docstring(tree) or "").lower()


def sizes(root: Path = PACKAGE) -> dict[str, tuple[int, int]]:
    """'path' or 'path:name' -> (lines, the limit), for every module, class and function under `root`."""
    found: dict[str, tuple[int, int]] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        if _generated(tree):
            continue
        key = path.relative_to(root.parent).as_posix()
        found[key] = (len(text.splitlines()), MAX_MODULE_LINES)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                limit = MAX_FUNCTION_LINES
            else:
                continue
            name = f"{key}:{node.name}"
            length = node.end_lineno - node.lineno + 1
            # Two functions of one name in a module (a method and a helper): the longer one counts.
            if length > found.get(name, (0, 0))[0]:
                found[name] = (length, limit)
    return found


def offenders(root: Path = PACKAGE) -> dict[str, int]:
    return {name: lines for name, (lines, limit) in sizes(root).items() if lines > limit}


def test_the_counter_sees_modules_classes_and_functions(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (package / "big.py").write_text(f"def long():\n{body}\n\n\nclass Small:\n    def short(self):\n        return 1\n")
    (package / "table.py").write_text('"""Ranges (generated; do not edit)."""\n\n' + "\n".join(f"X{i} = {i}" for i in range(700)) + "\n")
    (package / "long.py").write_text("\n".join(f"Y{i} = {i}" for i in range(601)) + "\n")
    assert offenders(package) == {"pkg/big.py:long": 62, "pkg/long.py": 601}
    assert sizes(package)["pkg/big.py:Small"] == (3, MAX_CLASS_LINES)


def test_no_module_class_or_function_over_its_limit():
    found = offenders()
    new = {name: lines for name, lines in found.items() if name not in KNOWN}
    assert not new, f"over the size limits (module {MAX_MODULE_LINES}, class {MAX_CLASS_LINES}, function {MAX_FUNCTION_LINES} lines): {new}"
    grown = {name: (KNOWN[name], lines) for name, lines in found.items() if name in KNOWN and lines > KNOWN[name]}
    assert not grown, f"known offenders that grew (was, now): {grown}"


def test_known_offenders_are_still_offenders():
    """A fixed offender leaves KNOWN, so that it cannot grow back unnoticed."""
    stale = sorted(set(KNOWN) - set(offenders()))
    assert not stale, f"no longer over the limits, remove from KNOWN in tests/test_layout.py: {stale}"
