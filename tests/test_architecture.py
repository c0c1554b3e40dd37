"""ARCHITECTURE.md matches the code: a package imports only from its own row of the package
table or rows above it, no import circle exists (function-level and `__main__` imports
included), and every entry point is in `cli/` or is a thin forwarder that ARCHITECTURE.md names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lavis_syncmask"
ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")

#: Modules that only forward an old or short command to `cli/` (no row: they may import `cli/`).
FORWARDERS = (
    "lavis_syncmask.train",
    "lavis_syncmask.evaluate",
    "lavis_syncmask.viz",
    "lavis_syncmask.data.synthetic",
    "lavis_syncmask.data.convert",
    "lavis_syncmask.synthetic.__main__",
    "lavis_syncmask.bench.__main__",
    "lavis_syncmask.search.__main__",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def package_rows() -> list[str]:
    """The `| \\`pkg/\\` | ... |` rows of ARCHITECTURE.md's package table, top to bottom."""
    return re.findall(r"^\| `(\w+)/` \|", ARCHITECTURE, flags=re.MULTILINE)


SUBPACKAGES = {m for m, p in MODULES.items() if p.name == "__init__.py" and m.count(".") == 1}


def row_of(module: str) -> str | None:
    """The subpackage (row) a module belongs to; None for top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and ".".join(parts[:2]) in SUBPACKAGES else None


def _resolve(name: str) -> str:
    """The module an import names (`pkg.mod.attr` -> `pkg.mod`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str) -> Iterator[str]:
    """Every `lavis_syncmask` module `module` imports, anywhere in its file."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import; the package imports absolutely"
            base = node.module or ""
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "lavis_syncmask" and _resolve(name) != module:
                yield _resolve(name)


GRAPH = {module: set(imports_of(module)) for module in MODULES}


def test_every_subpackage_has_a_row_once() -> None:
    rows = package_rows()
    assert len(rows) == len(set(rows)), f"a package is listed twice: {rows}"
    missing = sorted(p.split(".")[1] for p in SUBPACKAGES if p.split(".")[1] not in rows)
    assert not missing, f"ARCHITECTURE.md's package table lacks rows for {missing}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if row_of(m) and m not in FORWARDERS))
def test_a_row_imports_only_from_rows_above_it(module: str) -> None:
    order = {name: i for i, name in enumerate(package_rows())}
    own = order[row_of(module)]
    below = sorted(
        target for target in GRAPH[module] if row_of(target) and order[row_of(target)] > own
    )
    assert not below, f"{module} ({row_of(module)}/) imports from rows below it: {below}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_even_under_main() -> None:
    assert not _cycles(GRAPH), f"import circles: {_cycles(GRAPH)}"


def _has_entry_point(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return 'if __name__ == "__main__":' in text or path.name == "__main__.py"


def test_entry_points_live_in_cli_or_forward_there() -> None:
    outside = {m for m, p in MODULES.items() if _has_entry_point(p) and row_of(m) != "cli"}
    unexplained = sorted(outside - set(FORWARDERS))
    assert not unexplained, f"entry points outside cli/ that are not forwarders: {unexplained}"


@pytest.mark.parametrize("module", FORWARDERS)
def test_forwarders_are_thin_and_named_in_architecture(module: str) -> None:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not defined, f"{module} defines {[n.name for n in defined]}: move it to cli/"
    assert GRAPH[module] and all(t.startswith("lavis_syncmask.cli.") for t in GRAPH[module])
    shown = path.relative_to(ROOT).as_posix()
    assert f"`{shown}`" in ARCHITECTURE, f"ARCHITECTURE.md does not name the forwarder {shown}"


def test_console_scripts_point_into_cli() -> None:
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    targets = re.findall(r'"[\w-]+=([\w.]+):\w+"', setup)
    assert targets and all(t.startswith("lavis_syncmask.cli.") for t in targets), targets
