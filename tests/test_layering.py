"""Layers import downward only: ui -> runtime -> core -> io/processing (STYLE.md habit 5).

A static scan of every module's imports (including imports inside functions), so a
forbidden dependency fails CI even on a code path no test executes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openhcs"
UI = ("openhcs.pyqt_gui", "openhcs.textual_tui", "openhcs.frontend", "openhcs.cli", "PySide6", "textual")

FORBIDDEN = {
    "openhcs.io": ("openhcs.core", "openhcs.runtime", "openhcs.processing", *UI),
    "openhcs.processing": ("openhcs.core", "openhcs.runtime", "openhcs.io", *UI),
    "openhcs.core": ("openhcs.runtime", *UI),
    "openhcs.codegen": ("openhcs.runtime", *UI),
    "openhcs.demo": ("openhcs.runtime", *UI),
    "openhcs.runtime": UI,
    "openhcs.frontend": ("PySide6", "textual", "openhcs.pyqt_gui", "openhcs.textual_tui"),
}
# The legacy runner lives where the seed put it, but it is plain Python, not a UI module.
ALLOWED = {"openhcs.textual_tui.subprocess_runner"}


def _module_name(path: Path, package: Path) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _violations(package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        module = _module_name(path, package)
        for layer, banned in FORBIDDEN.items():
            if module != layer and not module.startswith(layer + "."):
                continue
            for imported in _imports(path) - ALLOWED:
                for ban in banned:
                    if imported == ban or imported.startswith(ban + "."):
                        out.append(f"{module} imports {imported} (layer {layer} must not use {ban})")
    return out


def test_layers_import_downward_only():
    assert _violations() == []


def test_the_scan_catches_a_violation(tmp_path):
    """The check itself can fail: a core module importing the runtime is reported."""
    fake = tmp_path / "openhcs" / "core" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from openhcs.runtime import protocol\n")
    assert _violations(tmp_path / "openhcs") == [
        "openhcs.core.bad imports openhcs.runtime.protocol (layer openhcs.core must not use openhcs.runtime)"
    ]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_every_layer_exists(layer):
    path = PACKAGE / Path(*layer.split(".")[1:])
    assert path.with_suffix(".py").exists() or path.is_dir()
