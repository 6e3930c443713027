"""The package layout keeps its rules (docs/architecture.md): no import cycles, public names across packages,
modules and functions of bounded size.

Imports are read from the source (``ast``), wherever they are written (top level or inside a function), so a lazy
import counts as an edge too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "landuse"
STAGES = ("core", "io", "surfaces", "allocation", "growth", "scale", "sleuth", "evaluation", "calibration", "report",
          "pipeline", "cli", "sample")  # fmt: skip
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 120

# Modules and functions still over the limits, with their size when this list was written: the split is not done
# yet for these (see the note). The test fails when one grows, and when one is under the limit (then it
# leaves the list), so the list only shrinks.
OVERSIZED_MODULES: dict[str, int] = {}
OVERSIZED_FUNCTIONS: dict[str, int] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else "landuse"


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> landuse modules it imports; and every cross-package import of a private name."""
    mods = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    private = []
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("landuse"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    target = sub if sub in mods else node.module
                    if target != name:
                        edges[name].add(target)
                    private_name = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private_name and _package(node.module) != _package(name):
                        private.append(f"{name}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("landuse.") and alias.name != name:
                        edges[name].add(alias.name)
    return edges, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    edges, _ = _imports()
    # importing landuse.x.y runs landuse/x/__init__ first: those edges are not cycles of the code (the package
    # inits import nothing but landuse.core.lazy)
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in edges.items()}
    assert _cycles(graph) == []


def test_no_import_cycle_between_packages() -> None:
    edges, _ = _imports()
    graph: dict[str, set[str]] = defaultdict(set)
    for m, ts in edges.items():
        for t in ts:
            if _package(t) != _package(m):
                graph[_package(m)].add(_package(t))
    assert _cycles(dict(graph)) == []
    assert "core" not in graph or graph["core"] == set(), "core depends on no other landuse package"


def test_no_private_name_crosses_a_package_border() -> None:
    _, private = _imports()
    assert private == []


def test_package_inits_import_nothing_heavy() -> None:
    """A package's __init__ states its contract and lists its names; importing it loads no stage."""
    for stage in STAGES:
        tree = ast.parse((ROOT / stage / "__init__.py").read_text())
        assert ast.get_docstring(tree), stage
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"__future__", "landuse.core.lazy"}, (stage, imported)


@pytest.mark.parametrize("stage", STAGES)
def test_every_exported_name_resolves(stage: str) -> None:
    import importlib

    pkg = importlib.import_module(f"landuse.{stage}")
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    import landuse

    for name in landuse.__all__:
        assert getattr(landuse, name) is not None


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    modules, functions = {}, {}
    for name, path in _modules().items():
        text = path.read_text()
        modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[f"{name}.{node.name}:{node.lineno}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_module_and_function_sizes() -> None:
    modules, functions = _sizes()
    big_modules = {m: n for m, n in modules.items() if n > MAX_MODULE_LINES}
    for m, n in big_modules.items():
        assert m in OVERSIZED_MODULES, f"{m} has {n} lines (limit {MAX_MODULE_LINES}): split it"
        assert n <= OVERSIZED_MODULES[m], f"{m} grew from {OVERSIZED_MODULES[m]} to {n} lines"
    assert set(OVERSIZED_MODULES) <= set(big_modules), "under the limit now: remove from OVERSIZED_MODULES"
    big = {f.rsplit(":", 1)[0]: n for f, n in functions.items() if n > MAX_FUNCTION_LINES}
    for f, n in big.items():
        assert f in OVERSIZED_FUNCTIONS, f"{f} has {n} lines (limit {MAX_FUNCTION_LINES}): split it"
        assert n <= OVERSIZED_FUNCTIONS[f], f"{f} grew from {OVERSIZED_FUNCTIONS[f]} to {n} lines"
    assert set(OVERSIZED_FUNCTIONS) <= set(big), "under the limit now: remove from OVERSIZED_FUNCTIONS"


def test_library_raises_errors_of_the_one_root() -> None:
    """Library code raises LanduseError subclasses (ArgumentError is also a ValueError), not bare built-in errors.

    pydantic validators (landuse/core/config*.py) must raise ValueError: pydantic turns it into the config error.
    """
    bare = []
    for name, path in _modules().items():
        if name.startswith("landuse.core.config"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in ("ValueError", "RuntimeError", "TypeError"):  # KeyError: the Mapping protocol
                    bare.append(f"{name}:{node.lineno} {node.exc.func.id}")
    assert bare == []


def test_library_error_messages_name_no_command_line_flag() -> None:
    """A library message names a parameter as `name`; only the CLI turns it into its flag (cli.app.command_flags)."""
    import re

    flagged = []
    for name, path in _modules().items():
        if name.startswith("landuse.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = "".join(c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str))
                if re.search(r"(?<![\w-])--[a-z]", text) and "gdal" not in text:  # GDAL commands suggested keep theirs
                    flagged.append(f"{name}:{node.lineno} {text[:80]!r}")
    assert flagged == []


def test_public_api_docstrings_follow_the_numpy_convention() -> None:
    """ruff, with the pydocstyle rules (numpy convention) pyproject.toml selects, passes on the library."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True,
                       cwd=ROOT.parent)
    assert r.returncode == 0, r.stdout[-3000:]
    import tomllib

    lint = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "D" in lint["select"] and lint["pydocstyle"]["convention"] == "numpy"
