"""profiles/ is pure: no event loop, no sockets, no clock, nothing from the service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import profiles

PACKAGE = Path(profiles.__file__).parent
FORBIDDEN_MODULES = ("asyncio", "websockets", "edge", "drivers", "aiohttp", "socket", "time")
FORBIDDEN_CALLS = ("now", "utcnow", "today")


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_module_is_pure(path: Path) -> None:
    """A profiles module imports none of the I/O stack or the service and reads no clock."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
            raise AssertionError(f"{path.name}:{node.lineno} reads the clock ({node.attr})")
