"""The CLI imports only the module of the command asked for: the map must name the module that really
defines each command, or that command would not exist when run on its own."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from tagtrail.cli import commands  # noqa: F401  (registers every command, as `tagtrail --help` does)
from tagtrail.cli.app import app
from tagtrail.cli.dispatch import COMMANDS, command_of


def _defined() -> dict[str, str]:
    found: dict[str, str] = {}
    for info in app.registered_commands:
        callback = info.callback
        assert callback is not None
        name = info.name or callback.__name__.replace("_", "-")
        found[name] = callback.__module__.rsplit(".", 1)[-1]
    for group in app.registered_groups:
        typer_app = group.typer_instance
        assert isinstance(typer_app, typer.Typer)
        callback = typer_app.registered_commands[0].callback
        assert callback is not None
        assert group.name is not None
        found[group.name] = callback.__module__.rsplit(".", 1)[-1]
    return found


def test_every_command_is_mapped_to_the_module_that_defines_it() -> None:
    assert _defined() == COMMANDS


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["plan", "--json"], "plan"),
        (["-c", "x/tagtrail.yaml", "-v", "report"], "report"),
        (["--config", "plan", "status"], "status"),  # a config file named `plan`
        (["--version"], None),
        ([], None),
    ],
)
def test_the_command_word_is_found_past_the_global_options(args: list[str], command: str | None) -> None:
    assert command_of(args) == command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_runs_on_its_own(name: str) -> None:
    """`tagtrail NAME --help` in a fresh process, where only NAME's module is imported."""
    done = subprocess.run(
        [sys.executable, "-m", "tagtrail", name, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
