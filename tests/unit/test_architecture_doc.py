"""docs/architecture.md's module table names every module of the package, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
PACKAGE = ROOT / "exporter"


def _modules() -> set[str]:
    return {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    }


def _documented() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    return set(re.findall(r"^\| `([a-z_/]+\.py)` \|", text, flags=re.MULTILINE))


def test_every_module_has_a_row() -> None:
    assert sorted(_modules() - _documented()) == []


def test_every_row_names_a_module() -> None:
    assert sorted(_documented() - _modules()) == []
