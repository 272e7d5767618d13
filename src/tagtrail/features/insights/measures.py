"""The delivery measures (the four DORA keys and three more), worked out from the deploy history. Pure: it
takes the history's entries and what the source repository says about the built commits, and reads no git,
file or clock of its own.

Every change of an app's image reference is first classified, oldest first per app:

- a **restore** is a rollback (trailer reason `rollback`), an automatic rollback (reason `auto-rollback`,
  or a rollback the decision log says the controller made on its own), or a pin or a hand edit (a commit
  without trailers) that moves the app to an older build than the one before it; builds are ordered by the
  time the tag scheme puts in the tag, else by their commit's time;
- an app's first reference that is not a build of the scheme (a bootstrap such as `web:bootstrap`, written
  before any build existed) is the **start** of its history: the window may start there, but it is not a
  change and is neither counted nor drawn;
- every other change to a build is a **deploy** (an app removed from the files is neither).

A deploy **failed** when the app's next change is a restore within FAILURE_WINDOW of it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from tagtrail.adapters.history import HistoryEntry
from tagtrail.domain.scheme import ParsedTag, Scheme

RESTORE_REASONS = frozenset({"rollback", "auto-rollback"})
AUTOMATIC_REASONS = frozenset({"auto-rollback"})
# restores only when they move to an older build (`pinned`: the controller deploying a pin set by hand)
PIN_REASONS = frozenset({"pin", "pin-forced", "pinned"})
SECURITY_REASONS = frozenset({"rebuild", "base-image"})
FAILURE_WINDOW = timedelta(days=1)
DAY = 86400.0

# (key, name, definition): what `tagtrail report` and the insights page print beside the figures
DEFINITIONS: tuple[tuple[str, str, str], ...] = (
    (
        "frequency",
        "Deployment frequency",
        "Deploys per day (and per week) in the window: changes of an app's image reference on the deploy"
        " branch, by tagtrail or by hand, that are not restores (an app's first reference that is not a build,"
        " a bootstrap, starts its history and is not a deploy). The window starts at --since ago, or at the"
        " first change in the history if that is later.",
    ),
    (
        "lead_time",
        "Lead time for changes",
        "From the built commit's time (its committer date in the source repository; the build time in the"
        " tag where the commit is not there) to the deploy commit's time. Median and p90 (nearest rank)"
        " of the deploys in the window. Where the cluster is observed, also to when it ran the build.",
    ),
    (
        "failure_rate",
        "Change failure rate",
        "Share of the deploys in the window whose app's next change is a restore within 24 hours: a"
        " rollback, an automatic rollback, or a pin or hand edit to an older build.",
    ),
    (
        "restore",
        "Time to restore",
        "From a failed deploy to the restore that followed it (the next good deploy). Median and p90.",
    ),
    (
        "age",
        "Age of what runs",
        "Time since the commit of the build each app runs now (its newest change in the history).",
    ),
    (
        "behind",
        "Builds behind",
        "Eligible builds newer than the one running (the dashboard's last plan; the CLI report reads no"
        " registry, so it leaves this to `tagtrail status`).",
    ),
    (
        "security",
        "Security-only deploys",
        "Share of the deploys in the window whose built commit is a dependabot commit or merge, or whose"
        " reason is `rebuild` or `base-image` (the same source, rebuilt).",
    ),
)


@dataclass(frozen=True)
class Built:
    """What the source repository says about a built commit."""

    time: datetime
    security: bool = False  # made or merged by dependabot


@dataclass(frozen=True)
class Event:
    """One change of one app, classified."""

    app: str
    time: datetime
    commit: str
    tag: str | None
    kind: Literal["deploy", "restore", "start"]
    reason: str  # the trailer's reason, or "manual"
    automatic: bool = False
    lead: timedelta | None = None
    lead_from: Literal["commit", "build"] | None = None
    lead_running: timedelta | None = None
    security: bool = False
    failed: bool = False
    restored_after: timedelta | None = None  # a failed deploy: how long until the restore


@dataclass(frozen=True)
class Measures:
    """The figures of one app (or of every app, `app` None) over the window."""

    app: str | None
    deploys: int
    per_day: float
    lead_median: timedelta | None
    lead_p90: timedelta | None
    lead_samples: int
    running_median: timedelta | None
    running_p90: timedelta | None
    failures: int
    restores: int
    automatic_restores: int
    restore_median: timedelta | None
    restore_p90: timedelta | None
    security: int
    age: timedelta | None
    behind: int | None

    @property
    def per_week(self) -> float:
        return self.per_day * 7

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.deploys if self.deploys else None

    @property
    def security_share(self) -> float | None:
        return self.security / self.deploys if self.deploys else None


@dataclass(frozen=True)
class Insights:
    """The measures over one window: overall, per app, and the classified changes the charts draw."""

    start: datetime
    end: datetime
    days: float
    overall: Measures
    apps: tuple[Measures, ...]
    events: tuple[Event, ...]  # the window's deploys and restores, oldest first

    def app(self, name: str) -> Measures | None:
        return next((m for m in self.apps if m.app == name), None)


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The middle value; of an even count, the mean of the two middle ones."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Sequence[timedelta], share: float) -> timedelta | None:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def tag_of(reference: str | None) -> str | None:
    """The tag of `repo:tag@digest` (None when the reference has none)."""
    if not reference:
        return None
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


class _Facts:
    """How the entries' builds read: their instants (ordering), their commits' times, security."""

    def __init__(self, scheme: Scheme, built: Mapping[str, Built]) -> None:
        self.scheme = scheme
        self.built = built
        self._parsed: dict[str, ParsedTag | None] = {}

    def parsed(self, tag: str | None) -> ParsedTag | None:
        if tag is None:
            return None
        if tag not in self._parsed:
            found = self.scheme.parse(tag)
            self._parsed[tag] = found if isinstance(found, ParsedTag) else None
        return self._parsed[tag]

    def commit(self, tag: str | None, built_from: str | None) -> Built | None:
        if built_from and built_from in self.built:
            return self.built[built_from]
        parsed = self.parsed(tag)
        return self.built.get(parsed.sha) if parsed else None

    def instant(self, tag: str | None, built_from: str | None) -> datetime | None:
        """Where a build stands in the order of builds: the time in its tag, else its commit's time."""
        parsed = self.parsed(tag)
        if parsed is not None and parsed.time is not None:
            return parsed.time
        commit = self.commit(tag, built_from)
        return commit.time if commit else None


def classify(
    entries: Sequence[HistoryEntry],
    scheme: Scheme,
    built: Mapping[str, Built],
    *,
    automatic: Collection[str] = (),
    running: Mapping[tuple[str, str], datetime] | None = None,
    applied: Mapping[str, datetime] | None = None,
    window: timedelta = FAILURE_WINDOW,
) -> list[Event]:
    """Every change (entries newest first, as the history gives them) as an Event, oldest first.
    `automatic`: deploy commits the decision log says were automatic rollbacks. `running`: when the
    cluster first ran (app, tag), where it is observed. `applied`: when each deploy commit was applied,
    where deploy.git.applied_by says so: a lead time then ends there (none for a commit never applied)."""
    facts = _Facts(scheme, built)
    events: list[Event] = []
    last: dict[str, int] = {}  # app → index in events of its previous change
    for entry in reversed(entries):
        if entry.after is None:
            last.pop(entry.app, None)
            continue
        reason = entry.reason or ("manual" if not entry.by_tagtrail else "deploy")
        if entry.before is None and facts.parsed(entry.tag) is None:  # a bootstrap: the history starts
            last.pop(entry.app, None)
            events.append(Event(entry.app, entry.time, entry.commit, entry.tag, "start", reason))
            continue
        commit = facts.commit(entry.tag, entry.built_from)
        is_auto = reason in AUTOMATIC_REASONS or entry.commit in automatic
        restore = reason in RESTORE_REASONS or is_auto
        if not restore and (reason in PIN_REASONS or not entry.by_tagtrail):
            # only a person's move can go backwards (tagtrail's own never does): order the two builds
            now_at = facts.instant(entry.tag, entry.built_from)
            before_at = facts.instant(tag_of(entry.before), None)
            restore = now_at is not None and before_at is not None and now_at < before_at
        previous = last.get(entry.app)
        if restore:
            event = Event(entry.app, entry.time, entry.commit, entry.tag, "restore", reason, is_auto)
            if previous is not None and events[previous].kind == "deploy":
                failed = events[previous]
                # a rebased commit's date may be earlier than the deploy's: restored at once
                elapsed = max(entry.time - failed.time, timedelta(0))
                if elapsed <= window:
                    events[previous] = replace(failed, failed=True, restored_after=elapsed)
        else:
            parsed = facts.parsed(entry.tag) if commit is None or "dependabot" in (entry.tag or "") else None
            start = commit.time if commit else (parsed.time if parsed else None)
            seen = running.get((entry.app, entry.tag or "")) if running else None
            end = entry.time if applied is None else applied.get(entry.commit)
            event = Event(
                entry.app,
                entry.time,
                entry.commit,
                entry.tag,
                "deploy",
                reason,
                lead=max(end - start, timedelta(0)) if start and end else None,
                lead_from=("commit" if commit else "build") if start else None,
                lead_running=max(seen - start, timedelta(0)) if seen and start else None,
                security=reason in SECURITY_REASONS
                or bool(commit and commit.security)
                or bool(parsed and parsed.branch.startswith("dependabot")),
            )
        last[entry.app] = len(events)
        events.append(event)
    return events


def measure(
    events: Sequence[Event],
    *,
    start: datetime,
    end: datetime,
    ages: Mapping[str, timedelta | None] | None = None,
    behind: Mapping[str, int | None] | None = None,
) -> Insights:
    """The measures of the events between `start` and `end`, overall and per app (a start of an app's
    history may start the window, and is no change)."""
    if events:
        start = max(start, min(e.time for e in events))
    days = max((end - start).total_seconds() / DAY, 1 / 24)
    chosen = tuple(e for e in events if start <= e.time <= end and e.kind != "start")
    ages = ages or {}
    behind = behind or {}
    by_app: dict[str, list[Event]] = {name: [] for name in sorted({e.app for e in events} | set(ages))}
    for event in chosen:
        by_app[event.app].append(event)
    per_app = tuple(
        _measures(name, found, days, ages.get(name), behind.get(name)) for name, found in by_app.items()
    )
    known_ages = [a for a in ages.values() if a is not None]
    known_behind = [b for b in behind.values() if b is not None]
    overall = _measures(
        None,
        list(chosen),
        days,
        max(known_ages) if known_ages else None,
        sum(known_behind) if known_behind else None,
    )
    return Insights(start, end, days, overall, per_app, chosen)


def _measures(
    app: str | None, events: list[Event], days: float, age: timedelta | None, behind: int | None
) -> Measures:
    deploys = [e for e in events if e.kind == "deploy"]
    restores = [e for e in events if e.kind == "restore"]
    leads = [e.lead for e in deploys if e.lead is not None]
    running = [e.lead_running for e in deploys if e.lead_running is not None]
    restored = [e.restored_after for e in deploys if e.restored_after is not None]
    return Measures(
        app,
        len(deploys),
        len(deploys) / days,
        median(leads),
        percentile(leads, 0.9),
        len(leads),
        median(running),
        percentile(running, 0.9),
        sum(1 for e in deploys if e.failed),
        len(restores),
        sum(1 for e in restores if e.automatic),
        median(restored),
        percentile(restored, 0.9),
        sum(1 for e in deploys if e.security),
        age,
        behind,
    )


def running_since(
    entries: Sequence[HistoryEntry], scheme: Scheme, built: Mapping[str, Built]
) -> dict[str, datetime | None]:
    """Per app, the commit time of what runs (its newest change; None: unknown, or the app was removed);
    the build time in the tag where the commit is not known."""
    facts = _Facts(scheme, built)
    found: dict[str, datetime | None] = {}
    for entry in entries:  # newest first: the first of each app is what runs
        if entry.app in found:
            continue
        if entry.after is None:
            found[entry.app] = None
            continue
        commit = facts.commit(entry.tag, entry.built_from)
        parsed = facts.parsed(entry.tag)
        found[entry.app] = commit.time if commit else (parsed.time if parsed else None)
    return found


def ages(since: Mapping[str, datetime | None], now: datetime) -> dict[str, timedelta | None]:
    """How old each app's running commit is at `now`."""
    return {app: None if when is None else max(now - when, timedelta(0)) for app, when in since.items()}
