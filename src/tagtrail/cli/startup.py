"""What tagtrail's own process (the console script, `python -m tagtrail`) does at start-up that a host running
`tagtrail.cli.main` in-process keeps for itself: two library imports skipped, no garbage collection while
modules are imported."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class Process:
    own = False  # this process is tagtrail's (the console script, python -m tagtrail), not a host's


def lean_imports() -> None:
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
    if not Process.own:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
