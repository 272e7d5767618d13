"""The command line: a thin typer app; each command calls one function of the modules below it.

`main` imports typer and the command's module only once it knows which command runs (`dispatch`), and
answers `tagtrail --version` before importing anything at all.
"""

from __future__ import annotations

import sys

from tagtrail import __version__
from tagtrail.cli.startup import Process, importing, lean_imports

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, as a console script, exit with) its exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        sys.stdout.write(f"tagtrail {__version__}\n")
        return 0
    Process.own = Process.own or argv is None
    if Process.own:
        lean_imports()
    with importing():
        from tagtrail.cli import dispatch  # noqa: PLC0415
        from tagtrail.cli.app import main as run  # noqa: PLC0415  (typer and the commands: when one runs)

        dispatch.load(args)  # the command's module registers itself on the root app, which imports none
    return run(args)
