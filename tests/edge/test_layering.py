"""The shape of edge/: no import cycles, drivers/ knows nothing of edge/ or profiles/, and
the service never imports the simulators in edge/sim/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of `known` that `path` imports, at any place (TYPE_CHECKING included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known:
                out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out & set(known)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_edge_has_no_import_cycle() -> None:
    """No module of edge/ imports, directly or not, one that imports it back."""
    modules = _modules("edge")
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    """The check above would see a cycle."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_drivers_know_nothing_of_edge_or_profiles() -> None:
    """drivers/ is a library of meters: it imports neither the service nor the charging math."""
    for path in (ROOT / "drivers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert name.split(".")[0] not in ("edge", "profiles"), f"{path} imports {name}"


def test_the_service_never_imports_the_simulators() -> None:
    """No module of edge/ outside edge/sim/ imports edge.sim, but for the command line inside
    the `demo` command; edge.sim frames OCPP-J itself."""
    modules = _modules("edge")
    for name, path in modules.items():
        imported = _imports(path, modules)
        if name == "edge.sim" or name.startswith("edge.sim."):
            assert not any(m.startswith("edge.ocppj") for m in imported), f"{name} uses edge.ocppj"
        elif name != "edge.cli":
            assert not any(m.split(".")[:2] == ["edge", "sim"] for m in imported), name
    tree = ast.parse(modules["edge.cli"].read_text())
    for node in tree.body:  # what `edge-csms serve` loads: the module level
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        assert not any(n.startswith("edge.sim") for n in names), ast.unparse(node)
