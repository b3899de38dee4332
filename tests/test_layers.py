"""No upward arrow: a package low in the drill path never imports one above it (checked
on the source, function-level imports included). The system's reader and the lab know
nothing of drills; the checks know nothing of the lab; nothing below the command line
imports it; ``shaped`` (a lab shaped like a system) sits above system, budget and lab."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).parent.parent / "src" / "spamdrill"
# package -> the packages it must never import
BELOW = {
    "system": ("budget", "lab", "drills", "checks", "shaped", "app", "cli"),
    "lab": ("drills", "checks", "shaped", "app", "cli"),
    "checks": ("drills", "lab", "shaped", "app", "cli"),
    "budget": ("lab", "drills", "checks", "shaped", "app", "cli"),
    "drills": ("app", "cli"),
    "shaped": ("drills", "app", "cli"),
}


def imported(path: Path) -> set[str]:
    """The spamdrill packages a module imports (``spamdrill.lab.config`` -> ``lab``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
