"""Triggers: which apps to reconcile now, from webhook hints. Pure, with an injectable clock.

Hints of one commit coalesce: when a pushed tag names commit S and S changed several apps (as CI's build
matrix sees it), those apps wait (up to a deadline) for the images of all of them, so one CI run becomes
one deploy commit. While they wait, no other reconcile deploys them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tagtrail.domain.scheme import ParsedTag

EVERY_APP = "*"


def stale(build: ParsedTag, running: ParsedTag | None) -> bool:
    """Whether a hinted build is no newer than what runs: a late notification of an older push (registries
    queue and retry them). Acting on it would deploy the app's newest build alone, ahead of the other
    images of that newest build's commit, so it is ignored; the poll still comes."""
    if running is None or not running.instants or not build.instants:
        return False
    return max(build.instants) <= min(running.instants)


@dataclass
class _Waiting:
    """Hints for one commit, waiting for the images of the other apps it changed."""

    expected: frozenset[str]
    deadline: float
    seen: set[str] = field(default_factory=set)

    def complete(self, now: float) -> bool:
        return self.seen >= self.expected or now >= self.deadline


class Coalescer:
    """Collects hints; `take` hands over the apps whose time has come."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._hinted: set[str] = set()
        self._waiting: dict[str, _Waiting] = {}

    def hint(
        self, app: str, sha: str | None = None, expected: set[str] | None = None, wait: float = 0
    ) -> set[str]:
        """A new image of `app`, built from commit `sha`, which changed the apps `expected`. Returns the
        apps still awaited for that commit (empty: the app is handed over at the next `take`)."""
        if sha and expected and len(expected) > 1 and app in expected:
            waiting = self._waiting.setdefault(sha, _Waiting(frozenset(expected), self.clock() + wait))
            waiting.seen.add(app)
            return set(waiting.expected - waiting.seen)
        self._hinted.add(app)
        return set()

    def hint_all(self) -> None:
        self._hinted.add(EVERY_APP)

    def take(self) -> tuple[set[str], bool]:
        """The apps hinted (and the commits whose images are all there, or whose wait ran out), and whether
        every app was asked for. What is taken is forgotten."""
        now = self.clock()
        everything = EVERY_APP in self._hinted
        apps = self._hinted - {EVERY_APP}
        self._hinted = set()
        for sha, waiting in list(self._waiting.items()):
            if waiting.complete(now):
                apps |= waiting.seen
                del self._waiting[sha]
        return apps, everything

    def held(self) -> set[str]:
        """Apps whose newest build waits for the other images of its commit."""
        now = self.clock()
        return {app for w in self._waiting.values() if not w.complete(now) for app in w.seen}

    def next_deadline(self) -> float | None:
        return min((w.deadline for w in self._waiting.values()), default=None)

    @property
    def pending(self) -> bool:
        return bool(self._hinted)
