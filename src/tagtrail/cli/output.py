"""How commands print: data to stdout (a table for people, JSON with --json), messages to stderr."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# When stdout is not a terminal (pipes, CI logs), never fold a row: scripts read these lines.
stdout = Console(soft_wrap=True) if sys.stdout.isatty() else Console(soft_wrap=True, width=1000)
stderr = Console(stderr=True, soft_wrap=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def print_table(table: Table) -> None:
    """A table for people, without the trailing blanks rich pads short rows with (they upset diffs and tests)."""
    with stdout.capture() as captured:
        stdout.print(table, highlight=False)
    sys.stdout.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")
    sys.stdout.flush()


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout, stable key order, UTC times with Z."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def iso(moment: datetime | None) -> str | None:
    return _default(moment) if moment is not None else None


def error(message: str) -> None:
    """One line per problem on stderr, prefixed so it reads as an error in any log."""
    for line in message.splitlines() or [""]:
        stderr.print(f"[bold red]error:[/] {escape(line)}", highlight=False, emoji=False)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, emoji=False)
