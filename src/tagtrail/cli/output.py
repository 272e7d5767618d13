"""How commands print: data to stdout (a table for people, JSON with --json), messages to stderr."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    stdout: Console
    stderr: Console


def __getattr__(name: str) -> Any:
    """`stdout` and `stderr`, rich consoles made when first used: a command that prints plain text or JSON
    (`tagtrail tag`, `plan --json`) does not import rich at all."""
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def _console(name: str) -> Console:
    if name in globals():
        return globals()[name]  # type: ignore[no-any-return]
    from rich.console import Console  # noqa: PLC0415

    if name == "stdout":  # not a terminal (pipes, CI logs): never fold a row, scripts read these lines
        console = Console(soft_wrap=True) if sys.stdout.isatty() else Console(soft_wrap=True, width=1000)
    else:
        console = Console(stderr=True, soft_wrap=True)
    globals()[name] = console
    return console


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def escape(text: str) -> str:
    """`text` shown as it is inside rich markup (rich.markup.escape, imported when first needed)."""
    from rich.markup import escape as rich_escape  # noqa: PLC0415

    return rich_escape(text)


def table(*columns: str, **options: Any) -> Table:
    """A rich Table (rich.table, imported only by a command that prints one)."""
    from rich.table import Table  # noqa: PLC0415

    return Table(*columns, **options)


def print_table(table: Table) -> None:
    """A table for people, without the trailing blanks rich pads short rows with (they upset diffs and tests)."""
    console = _console("stdout")
    with console.capture() as captured:
        console.print(table, highlight=False)
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
        _console("stderr").print(f"[bold red]error:[/] {escape(line)}", highlight=False, emoji=False)


def warn(message: str) -> None:
    _console("stderr").print(f"[yellow]warning:[/] {escape(message)}", highlight=False, emoji=False)
