"""One tagtrail at a time per checkout or clone: a CLI `deploy` next to `tagtrail serve` in the same
checkout would otherwise share (and delete) each other's worktree. An advisory lock (flock) on a file in
the git folder, released by the kernel when its holder dies, so a crash never leaves it behind."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from tagtrail.errors import GitError

log = logging.getLogger("tagtrail.targets")
POLL = 0.2


class CheckoutLock:
    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fd)
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise GitError(
                        f"another tagtrail ({holder}) has been deploying from {self.path.parent} for over"
                        f" {self.timeout:g} s; wait for it or stop it, then run this again"
                    ) from None
                if not told:
                    log.warning(
                        "another tagtrail is deploying from this checkout (%s); waiting up to %g s",
                        holder,
                        self.timeout,
                    )
                    told = True
                time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "a process"
