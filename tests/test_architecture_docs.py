"""The architecture page's table names every package and root module of sammoe_core."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_package_and_root_module_is_in_the_architecture_table():
    table = [line for line in (REPO / "docs" / "architecture.md").read_text().splitlines() if line.startswith("| `")]
    named = {line.split("`")[1] for line in table}
    package = REPO / "sammoe_core"
    parts = {f"sammoe_core/{p.name}/" for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"}
    parts |= {f"sammoe_core/{p.name}" for p in package.glob("*.py")}
    assert parts - named == set(), f"missing from docs/architecture.md's table: {sorted(parts - named)}"
    assert named - parts == set(), f"in the table but not in the package: {sorted(named - parts)}"
