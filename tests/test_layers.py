"""The layers of the code base: data flows one way, and only the command line composes them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(path: Path) -> set[str]:
    """Top-level packages that a module imports, wherever the import statement stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_command_line_imports_the_analysis():
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "ecosystem").rglob("*.py"))
                 if p.name != "cli.py" and "analysis" in imported_packages(p)]
    assert offenders == []
    assert "analysis" in imported_packages(ROOT / "ecosystem" / "cli.py")  # the scan does see imports


def test_agents_do_not_import_the_analysis_or_the_command_line():
    for path in (ROOT / "agents").rglob("*.py"):
        assert not {"analysis"} & imported_packages(path), path
        assert "ecosystem.cli" not in path.read_text(), path
