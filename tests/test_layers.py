"""No upward arrow: a package low in the drill path never imports one above it (checked on
the source, function-level imports included). The sans-IO cores (proto) and what the
wrappers share (lean) import nothing above them; the system's reader knows nothing of
the wrappers it reads the configs of, and with the lab nothing of drills; the checks
know nothing of the lab; nothing below the command line imports it; ``shaped`` (a lab
shaped like a system) sits above system, budget and lab.

No import cycle either, between modules or between packages: what two need of each other
moves to the lower one (a sans-IO core below its I/O). Deferred imports inside functions
count (they are how a cycle hides); imports under ``if TYPE_CHECKING:`` do not."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).parent.parent / "src" / "spamdrill"
# package -> the packages it must never import
BELOW = {
    # the sans-IO cores and what the two programs in the delivery chain share: nothing above
    "proto": ("system", "deliver", "spamc", "budget", "lab", "drills", "checks", "shaped",
              "app", "cli"),
    "lean": ("proto", "system", "deliver", "spamc", "budget", "lab", "drills", "checks",
             "shaped", "app", "cli"),
    "system": ("deliver", "spamc", "budget", "lab", "drills", "checks", "shaped", "app",
               "cli"),
    "lab": ("drills", "checks", "shaped", "app", "cli"),
    "checks": ("drills", "lab", "shaped", "app", "cli"),
    "budget": ("lab", "drills", "checks", "shaped", "app", "cli"),
    "drills": ("app", "cli"),
    "shaped": ("drills", "app", "cli"),
}


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def imported(path: Path) -> set[str]:
    """The spamdrill packages a module imports (``spamdrill.lab.config`` -> ``lab``)."""
    out = set()
    for node in ast.walk(parsed(path)):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
            else [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "spamdrill" and len(parts) > 1:
                out.add(parts[1])
    return out


@pytest.mark.parametrize("package", sorted(BELOW))
def test_no_upward_import(package: str) -> None:
    files = [SRC / f"{package}.py"] if (SRC / f"{package}.py").exists() else \
        sorted((SRC / package).rglob("*.py"))
    wrong = [f"{f.relative_to(SRC)} imports spamdrill.{p}" for f in files
             for p in sorted(imported(f) & set(BELOW[package]))]
    assert files and not wrong, wrong


def _runtime_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at module level or deferred inside a function,
    not one under ``if TYPE_CHECKING:`` (the delivery path's modules spell it as a
    module-level ``TYPE_CHECKING = False``, the same name)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _runtime_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(node, field, [])
                yield from _runtime_imports([n for n in inner if isinstance(n, ast.AST)])


def _module(path: Path) -> str:
    parts = ("spamdrill", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def module_graph() -> dict[str, frozenset[str]]:
    """spamdrill module -> the spamdrill modules it imports (``from p import m`` names the
    module ``p.m`` when there is one, else ``p``)."""
    paths = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out = set()
        for node in _runtime_imports(parsed(path).body):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
                continue
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                       for a in node.names)
        graph[name] = frozenset(out & set(paths) - {name})
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Each cycle of the graph (its strongly connected components of more than one node,
    Tarjan's), as the nodes in it, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = [stack.pop()]
            while component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _arrows(graph: dict[str, frozenset[str]], cycle: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in cycle for b in sorted(graph[a]) if b in cycle]


def _package(module: str) -> str:
    """``spamdrill.deliver.main`` -> ``deliver``; a top-level module is its own."""
    return module.split(".")[1] if "." in module else module


def test_no_import_cycle_between_modules() -> None:
    graph = module_graph()
    found = [_arrows(graph, c) for c in cycles(graph)]
    assert not found, found


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for a, targets in module_graph().items():
        packages.setdefault(_package(a), set()).update(
            _package(b) for b in targets if _package(b) != _package(a))
    graph = {p: frozenset(t) for p, t in packages.items()}
    found = [_arrows(graph, c) for c in cycles(graph)]
    assert not found, found


def test_a_cycle_is_found_deferred_or_not_and_type_checking_is_not_one() -> None:
    """The detector itself, on a made-up graph and made-up source: a deferred import is an
    arrow, one under TYPE_CHECKING is not."""
    assert cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}),
                   "d": frozenset({"a"})}) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []
    source = ("import x\nif TYPE_CHECKING:\n    import hidden\nelse:\n    import shown\n"
              "def f():\n    try:\n        from y import z\n    except E:\n        import w\n")
    names = [a.name if isinstance(n, ast.Import) else n.module
             for n in _runtime_imports(ast.parse(source).body)
             for a in (n.names[:1] if isinstance(n, ast.Import) else [n.names[0]])]
    assert names == ["x", "shown", "y", "w"]
