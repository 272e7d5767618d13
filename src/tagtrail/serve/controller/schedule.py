"""When each app is polled next: on its interval (spread by jitter) after a reconcile that worked, sooner
but backing off exponentially after a transient failure, and at the interval after a permanent one
(stalled: trying sooner cannot help; a config reload asks again at once)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping

from tagtrail.reconcile import Outcome

BACKOFF_FIRST = 5.0  # seconds before the first retry after a transient failure
BACKOFF_CAP_INTERVALS = 10  # a long outage is polled at most every ten intervals
WHOLE = "*"  # not an app: a whole reconcile that failed before any app was known, backing off like one


class Schedule:
    def __init__(self, clock: Callable[[], float], spread: Callable[[float], float] | None = None) -> None:
        self.clock = clock
        # uniform in [-width, width]: spreads polls of many apps over time (not a secret)
        self._spread = spread or (lambda width: random.uniform(-width, width))  # noqa: S311
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    @property
    def known(self) -> set[str]:
        return set(self._due)

    def due(self) -> set[str]:
        now = self.clock()
        return {app for app, when in self._due.items() if when <= now}

    def next_deadline(self) -> float | None:
        return min(self._due.values(), default=None)

    def everything_now(self) -> None:
        self._due = dict.fromkeys(self._due, 0.0)

    def succeeded(self, apps: Iterable[str], interval: Callable[[str], float], jitter: float) -> None:
        now = self.clock()
        self._due.pop(WHOLE, None)  # a run worked: the apps are known now
        self._failures.pop(WHOLE, None)
        for app in apps:
            self._failures.pop(app, None)
            seconds = interval(app)
            self._due[app] = now + seconds + self._spread(seconds * jitter)

    def stalled(self, apps: Iterable[str], interval: Callable[[str], float]) -> None:
        now = self.clock()
        for app in apps:
            self._failures.pop(app, None)
            self._due[app] = now + interval(app)

    def retry(self, apps: Iterable[str], interval: Callable[[str], float]) -> float:
        """Back off: 5 s, 10 s, 20 s, … up to ten intervals. Returns the longest delay chosen."""
        now, longest = self.clock(), 0.0
        for app in apps:
            failures = self._failures[app] = self._failures.get(app, 0) + 1
            delay = min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_CAP_INTERVALS * interval(app))
            self._due[app] = now + delay
            longest = max(longest, delay)
        return longest

    def reported(
        self, outcomes: Mapping[str, Outcome], interval: Callable[[str], float], jitter: float
    ) -> None:
        """A reconcile that ran: each app by what came of it (retry, stalled, or it worked)."""
        self.retry([a for a, o in outcomes.items() if o is Outcome.RETRY], interval)
        self.stalled([a for a, o in outcomes.items() if o is Outcome.STALLED], interval)
        self.succeeded(
            [a for a, o in outcomes.items() if o not in (Outcome.RETRY, Outcome.STALLED)], interval, jitter
        )

    def sooner(self, app: str, seconds: float) -> None:
        """Look at `app` again in `seconds` at the latest (a soak ends then), unless it is due before."""
        at = self.clock() + seconds
        self._due[app] = min(self._due.get(app, at), at)

    def when(self, app: str) -> float | None:
        """When the app is polled next (the clock's time), if it is scheduled."""
        return self._due.get(app)

    def failures(self, app: str) -> int:
        return self._failures.get(app, 0)
