"""The layers' arrows run one way (docs/ARCHITECTURE.md): this test reads every
module's imports and fails when a package reaches a layer it must not know."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "phidb"

# package -> the phidb packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "query": {"errors"},
    "storage": {"errors", "query", "security.keys"},
    "security.auth": {"errors", "storage", "security.authz"},
    "security.authz": {"errors"},
    "security.audit": {"errors", "query", "config"},
    "security.keys": {"errors"},
    "commands": {"errors", "query", "storage", "security", "config"},
    "server": {"errors", "wire", "commands", "storage", "security", "config"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")[1:]
    if parts[:1] == ["security"] and len(parts) > 1:
        return "security." + parts[1]
    return parts[0] if parts else "__init__"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from phidb import __version__` names the root package, not a layer.
            if node.module != "phidb":
                found.add(node.module)
    return {name for name in found if name.startswith("phidb.")}


def allowed(layer: str, target: str) -> bool:
    rules = ALLOWED[layer]
    return target == layer or target in rules or target.split(".")[0] in rules


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str):
    folder = PACKAGE / layer.replace(".", "/")
    violations = []
    for path in sorted(folder.rglob("*.py")):
        for target in imports(path):
            if not allowed(layer, layer_of(target)):
                violations.append(f"{path.relative_to(PACKAGE.parent)} imports {target}")
    assert violations == []
