"""docs/COMPATIBILITY.md stays true: its command table names every registered command (and
only registered ones), and its known limitations name every file with a `Limitation:`."""

from __future__ import annotations

import re
from pathlib import Path

import phidb.commands  # noqa: F401 - registers every command
from phidb.commands.registry import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "COMPATIBILITY.md"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"COMPATIBILITY.md has no '## {title}' section"
    return match.group(1)


def command_table() -> dict[str, str]:
    """Each command named in the first column of the table, with its status."""
    rows: dict[str, str] = {}
    for line in section("Commands").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or cells[0] in ("command", "---"):
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def test_every_registered_command_is_in_the_command_table() -> None:
    documented = command_table()
    missing = sorted(set(COMMANDS) - set(documented))
    assert missing == [], f"add these commands to docs/COMPATIBILITY.md: {missing}"


def test_the_command_table_lists_only_registered_commands_with_a_status() -> None:
    documented = command_table()
    assert sorted(set(documented) - set(COMMANDS)) == []
    assert {status for status in documented.values()} <= {"yes", "partly", "no"}


def test_every_file_with_a_limitation_is_named_under_known_limitations() -> None:
    limitations = section("Known limitations")
    files = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "phidb").rglob("*.py")
        if "Limitation:" in path.read_text(encoding="utf-8")
    )
    assert files, "expected Limitation: comments in phidb/"
    unnamed = [f for f in files if f"`{f}`" not in limitations]
    assert unnamed == [], f"describe the limitations of {unnamed} in docs/COMPATIBILITY.md"
