"""The bench's server processes, and their end whatever way the test run ends.

Each `Process` runs in a process group of its own, which `stop()` ends (TERM, then KILL after 10 s): its
children go with it, and a terminal's Ctrl-C does not reach it directly. Whoever owns processes `register`s
itself: its `stop()` then runs at the interpreter's exit (atexit) and on SIGTERM, SIGINT and SIGHUP, after
which the signal does what it did before. A killed test run leaves nothing behind (a SIGKILL cannot be
caught: nothing can).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # a process group of its own: stopped as a whole, and out of reach of a terminal's Ctrl-C, which
        # the signal handlers below turn into a stop
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        # only while it is not reaped: until then its pid, the group's id, cannot be another's
        if self.popen is not None and self.popen.poll() is None:
            group = self.popen.pid
            _signal_group(group, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(group, signal.SIGKILL)
                self.popen.wait()
        self.popen = None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Owner(Protocol):
    def stop(self) -> None: ...


def register(owner: Owner) -> None:
    """Stop `owner` at every way out of the process, until it is `unregister`ed."""
    _install()
    _RUNNING.add(owner)


def unregister(owner: Owner) -> None:
    _RUNNING.discard(owner)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


_RUNNING: set[Owner] = set()
_PREVIOUS: dict[int, Any] = {}


def _stop_all() -> None:
    for owner in list(_RUNNING):
        owner.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Stops every owner, then does what the signal did before (SIGINT: KeyboardInterrupt, so pytest
    reports the interrupted run; SIGTERM, SIGHUP: the process dies of it)."""
    _stop_all()
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install() -> None:
    atexit.unregister(_stop_all)  # registered once, however many owners
    atexit.register(_stop_all)
    if _PREVIOUS or threading.current_thread() is not threading.main_thread():
        return  # installed already, or not installable (signal handlers belong to the main thread)
    for signum in EXIT_SIGNALS:
        _PREVIOUS[signum] = signal.getsignal(signum)
        signal.signal(signum, _on_signal)
