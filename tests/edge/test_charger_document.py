"""The charger document: every field declared, and written only by its owner."""

from __future__ import annotations

import ast
from pathlib import Path

from edge.chargers import FIELD_OWNERS, ChargerDoc

EDGE = Path(__file__).resolve().parents[2] / "edge"


def _module_name(path: Path) -> str:
    parts = path.relative_to(EDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _writes(tree: ast.AST) -> list[tuple[str, int]]:
    """(field, line) of every document write: `….chargers.update(charger, field=…)`,
    `….update(charger, field=…)` inside the registry, and `….doc["field"] = …`."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and (
                (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "chargers")
                or (isinstance(node.func.value, ast.Name) and node.func.value.id == "self")
            )
        ):
            found.extend((kw.arg, node.lineno) for kw in node.keywords if kw.arg is not None)
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Attribute)
                and target.value.attr == "doc"
                and isinstance(target.slice, ast.Constant)
            ):
                found.append((str(target.slice.value), node.lineno))
    return found


def test_every_declared_field_has_one_owner() -> None:
    """The declared fields and the ownership table name the same keys."""
    declared = ChargerDoc.__required_keys__ | ChargerDoc.__optional_keys__
    assert declared == set(FIELD_OWNERS)


def test_fields_are_written_only_by_their_owner() -> None:
    """No module writes a charger document field it does not own (or one not declared)."""
    wrong = []
    for path in sorted(EDGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for field, line in _writes(tree):
            owner = FIELD_OWNERS.get(field)
            if owner != module:
                wrong.append(f"{module}:{line} writes {field!r} (owner: {owner})")
    assert wrong == []


def test_the_scan_sees_writes() -> None:
    """The scan finds both forms of write, so an empty result above means something."""
    tree = ast.parse(
        "svc.chargers.update(charger, siteCap=None, localList={})\ncharger.doc['lastBoot'] = now\n"
    )
    assert sorted(field for field, _ in _writes(tree)) == ["lastBoot", "localList", "siteCap"]
