"""The command line: a thin typer app; each command calls one function of the modules below it.

`main` imports typer and the command's module only once it knows which command runs (`dispatch`), and
answers `tagtrail --version` before importing anything at all.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tagtrail import __version__

__all__ = ["main"]


class _Process:
    own = False  # this process is tagtrail's (the console script, python -m tagtrail), not a host's


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, as a console script, exit with) its exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        sys.stdout.write(f"tagtrail {__version__}\n")
        return 0
    _Process.own = _Process.own or argv is None
    if _Process.own:
        _lean_imports()
    with importing():
        from tagtrail.cli import dispatch  # noqa: PLC0415
        from tagtrail.cli.app import main as run  # noqa: PLC0415  (typer and the commands: when one runs)

        dispatch.load(args)
    return run(args)


def _lean_imports() -> None:
    """Two things libraries do on import that no tagtrail command uses, skipped in tagtrail's own process
    (a host that runs `main` in-process keeps both): httpx imports its own command line, and with it click,
    rich's console and pygments, whenever click is installed (uvicorn installs it); pydantic reads every
    installed package's entry points looking for plugins the first time it builds a model."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # httpx then defines a stub `main`
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


@contextmanager
def importing() -> Iterator[None]:
    """Around imports in tagtrail's own process: what they make lives as long as the process, so garbage
    collections meanwhile find nothing to free (they were 15% of a plan's start-up); none runs, and what
    the imports made is frozen out of later ones. A host that runs `main` in-process keeps its own GC."""
    if not _Process.own:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
