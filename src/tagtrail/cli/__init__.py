"""The command line: a thin typer app; each command calls one function of the modules below it."""

from tagtrail.cli.app import app, main

__all__ = ["app", "main"]
