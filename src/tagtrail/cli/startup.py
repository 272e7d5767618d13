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
    settled = False  # `settle` has run


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


def settle() -> int:
    """Once, after `tagtrail serve` has read everything (its first whole reconcile): what start-up built, the
    web app and the first read of every app, lives as long as the process. It is frozen out of later
    collections, so a full collection triggered by a push (whose parse of a 500-app deploy file makes tens
    of thousands of objects) walks what is new, not the whole heap: 15 to 20 ms each, in the push's way,
    every few pushes at 500 apps. What is frozen and later dropped in a reference cycle (the first
    reconciler, after a config reload) is not freed: a bounded cost, once, as what replaces it is collected
    as usual. A host that runs tagtrail in-process keeps its own GC. Returns how many objects are frozen."""
    if Process.own and not Process.settled:
        Process.settled = True
        gc.collect()
        gc.freeze()
    return gc.get_freeze_count()
