"""Imports point down the layers (ARCHITECTURE.md): a package imports only from its own
layer's neighbours and below, so no two packages need each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2] / "devmesh"

# What each package may import from devmesh, besides itself.
_BASE = {"domain", "config"}
_KIT = _BASE | {"adapters", "observability"}
_LOW = _KIT | {"security", "store"}
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "observability": _BASE,
    "adapters": _KIT,
    "providers": {"domain", "adapters"},
    "security": _KIT | {"store"},
    "store": _BASE,
    "events": _LOW,
    "knowledge": _LOW | {"events"},
    "notifications": _LOW | {"events"},
    "tools": _LOW | {"events", "knowledge"},
}


def _imports(path: Path) -> set[str]:
    """The devmesh packages ``path`` imports (``devmesh.x.y`` → ``x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.split(".")[1] for name in names if name.startswith("devmesh.")}
    return found


def _layer_imports(package: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT.parent)): _imports(path) - {package}
        for path in sorted((ROOT / package).rglob("*.py"))
    }


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        module: sorted(imported - ALLOWED[package])
        for module, imported in _layer_imports(package).items()
        if imported - ALLOWED[package]
    }
    assert wrong == {}


def test_a_provider_imports_no_other_provider() -> None:
    wrong = []
    for path in sorted((ROOT / "providers").rglob("*.py")):
        own = path.relative_to(ROOT / "providers").parts[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "devmesh.providers."
            ):
                other = (node.module or "").split(".")[2]
                if other != own:
                    wrong.append(f"{path.relative_to(ROOT.parent)} imports {node.module}")
    assert wrong == []
