"""A benchmark's own HOME, state, cache and git identity, so it neither reads nor writes the user's."""

from __future__ import annotations

import os
from pathlib import Path


def isolate(work: Path) -> None:
    """Point this process (and what it starts) at folders below `work` and a git identity of its own."""
    (work / "home").mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "HOME": str(work / "home"),
            "XDG_STATE_HOME": str(work / "state"),
            "XDG_CACHE_HOME": str(work / "cache"),
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
    )
