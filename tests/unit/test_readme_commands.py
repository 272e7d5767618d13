"""The README's command table names every command the CLI registers (a new command, `tagtrail verify`
among them, is documented where users look)."""

from __future__ import annotations

from pathlib import Path

from tagtrail.cli import commands  # noqa: F401  (registers the commands)
from tagtrail.cli.app import app

README = (Path(__file__).parents[2] / "README.md").read_text()


def _commands() -> list[str]:
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    for group in app.registered_groups:
        assert group.typer_instance is not None
        names += [f"{group.name} {c.name}" for c in group.typer_instance.registered_commands]
    return names


def test_every_command_is_in_the_readme_table() -> None:
    table = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    names = _commands()
    assert "verify" in names
    assert [name for name in names if f"`tagtrail {name}" not in table] == []
