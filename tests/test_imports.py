"""The import graph of the facecluster package: no cycles, and each front-end library in its one place.

Every module is parsed with `ast` (nothing is imported), and every `import` / `from ... import` of
`facecluster.*` counts, at module level and inside functions alike: an import moved into a function
still makes the dependency, it only hides a cycle until the function runs. Relative imports are
resolved against the importing module.

A package's `__init__` is a module of its own here. Importing `facecluster.models.sface` also runs
`facecluster/models/__init__.py`, but a package `__init__` that re-exports its submodules is the usual
layout; what closes a cycle is a submodule importing a name from its package's `__init__`, and that is
an edge to the package module, which this graph has.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "facecluster"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# Modules that hold pure rules (box geometry, the text rules of names): they import nothing of ours,
# so any module may use them without an upward import.
PURE_MODULES = ("facecluster.geometry", "facecluster.naming_rules")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    # `from . import x` inside a package's __init__ is relative to the package itself.
    drop = level - 1 if is_package else level
    base = base[: len(base) - drop] if drop else base
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every (imported name, line) in the module: `import a.b` gives a.b, `from a.b import c` gives a.b.c."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                source = _resolve_relative(module, is_package, node.level, node.module)
            # `from a.b import c` runs a.b's package __init__ on the way, but the dependency is on
            # a.b.c when that is a module, else on a.b (see _graph).
            found += [(f"{source}.{alias.name}" if source else alias.name, node.lineno) for alias in node.names]
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Module -> the facecluster modules it imports (anywhere in the file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _line in _imports(module, path):
            # `from facecluster.models import ModelPack` names facecluster.models.ModelPack, which is
            # no module: the edge goes to the longest prefix that is one.
            parts = name.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            target = ".".join(parts)
            if target and target != module and target != PACKAGE:
                graph[module].add(target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search, colours white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def _third_party_users(top_names: set[str]) -> dict[str, list[str]]:
    """Module -> 'name:line' of each import of one of `top_names` (e.g. {'click'}) anywhere in it."""
    users: dict[str, list[str]] = {}
    for module, path in _modules().items():
        for name, line in _imports(module, path):
            if name.split(".")[0] in top_names:
                users.setdefault(module, []).append(f"{name}:{line}")
    return users


def test_the_graph_sees_every_module_and_function_level_imports() -> None:
    graph = _graph()
    # Sanity: the parser found the package and its edges, so "no cycle" below is not vacuous.
    assert {"facecluster.cli", "facecluster.cli.export", "facecluster.store", "facecluster.models", "facecluster.web.app"} <= set(graph)
    assert "facecluster.store" in graph["facecluster.cli.command"]
    # The package's __init__ adds the commands of its modules: an edge to each.
    assert "facecluster.cli.scan" in graph["facecluster.cli"]
    # cli imports the web front-end inside the `review` command (so Flask loads only there): counted.
    assert "facecluster.web" in graph["facecluster.cli.export"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_imports_resolve() -> None:
    assert _resolve_relative("facecluster.models.sface", False, 1, "base") == "facecluster.models.base"
    assert _resolve_relative("facecluster.models", True, 1, "base") == "facecluster.models.base"
    assert _resolve_relative("facecluster.models.sface", False, 2, "store") == "facecluster.store"


def test_no_import_cycles() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_pure_modules_import_nothing_of_ours() -> None:
    graph = _graph()
    for module in PURE_MODULES:
        assert module in graph, f"{module} is missing"
        assert graph[module] <= {"facecluster.errors"}, f"{module} imports {sorted(graph[module])}"


def _function_level_imports(ours_only: bool = True) -> list[tuple[str, int, list[str]]]:
    """(module, line, source lines) of each `facecluster.*` import inside a function (every import, if not `ours_only`)."""
    found = []
    modules = _modules()
    for module, path in modules.items():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        lines = text.splitlines()
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    ours = any(alias.name.split(".")[0] == PACKAGE for alias in node.names)
                elif isinstance(node, ast.ImportFrom):
                    ours = bool(node.level) or (node.module or "").split(".")[0] == PACKAGE
                else:
                    continue
                if ours or not ours_only:
                    found.append((module, node.lineno, lines))
    return found


def _says_why(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, on another line of its run of import lines (blank lines
    between), or on the line above that run (`# why`, or `except ImportError:  # why`)."""
    i = lineno - 1
    if "#" in lines[i]:
        return True
    i -= 1
    while i >= 0 and (not lines[i].strip() or lines[i].strip().startswith(("from ", "import "))):
        if "#" in lines[i]:
            return True
        i -= 1
    return i >= 0 and (lines[i].strip().startswith("#") or "  # " in lines[i])


def test_a_reason_is_a_comment_on_the_import_or_above_its_run() -> None:
    lines = ["def f():", "    # Pillow loads only here.", "    from PIL import Image", "", "    from facecluster.decode import decode",
             "    from facecluster.store import Store", "    x = 1", "    from facecluster.cli import main  # the CLI, late"]
    assert _says_why(lines, 5) and _says_why(lines, 6) and _says_why(lines, 8)
    assert not _says_why(["def f():", "    from facecluster.store import Store"], 2)
    assert _says_why(["    except ImportError:  # the public path", "        import hdbscan"], 2)
    assert _says_why(["    import onnx  # heavy", "    from onnx import helper"], 2)
    assert not _says_why(["    try:", "        import rawpy"], 2)


def test_imports_of_ours_inside_functions_say_why() -> None:
    """No cycle can hide behind them (the graph above counts them); each one still gives its reason
    (a heavy dependency loaded only where needed), or it belongs at the top of the module."""
    found = _function_level_imports()
    assert found, "the finder found none at all (cli/export.py imports the web front-end inside `review`)"
    silent = [f"{module}:{line}" for module, line, lines in found if not _says_why(lines, line)]
    assert not silent, f"imports inside functions without a comment saying why: {silent}"


def test_every_import_inside_a_function_says_why() -> None:
    """Third-party ones too: a heavy or optional library loaded where it is needed says so; anything
    else belongs at the top of the module."""
    found = _function_level_imports(ours_only=False)
    silent = [f"{module}:{line}" for module, line, lines in found if not _says_why(lines, line)]
    assert not silent, f"imports inside functions without a comment saying why: {silent}"


def test_click_and_rich_only_in_the_cli() -> None:
    users = _third_party_users({"click", "rich"})
    outside = {m: names for m, names in users.items() if m != "facecluster.cli" and not m.startswith("facecluster.cli.")}
    assert {"facecluster.cli", "facecluster.cli.command", "facecluster.cli.output"} <= set(users)
    assert not outside, f"click/rich imported outside facecluster/cli/: {outside}"


def test_flask_only_in_the_web_package() -> None:
    users = _third_party_users({"flask", "werkzeug"})
    outside = {m: names for m, names in users.items() if not m.startswith("facecluster.web")}
    assert "facecluster.web.app" in users
    assert not outside, f"Flask imported outside facecluster/web/: {outside}"
