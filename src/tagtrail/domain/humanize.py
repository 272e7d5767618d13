"""How long ago, for a table cell: the one rule the CLI and the dashboard share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))
SKEW = 300  # seconds a clock may run ahead of ours and still read as "now"


def age(when: datetime | None, now: datetime | None = None, *, empty: str = "—") -> str:
    """'3m', '5h', '2d'. A moment a little ahead (another clock's skew) is '0s'; one further in the future
    is negative ('-2h': a tag dated ahead of the clock is worth seeing)."""
    if when is None:
        return empty
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if -SKEW <= seconds < 0:
        seconds = 0
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    for unit, size in _UNITS:
        if seconds >= size:
            return f"{sign}{seconds // size}{unit}"
    return f"{sign}{seconds}s"


def span(value: timedelta | None, *, empty: str = "—") -> str:
    """A duration for a table cell: '45m', '5.5h', '3.2d'."""
    if value is None:
        return empty
    seconds = value.total_seconds()
    if seconds < 3600:
        return f"{round(seconds / 60)}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def soak(value: timedelta) -> str:
    """A soak's length or what is left of it: '45s' under a minute (a short soak is worth seeing to the
    second), else as `span`."""
    seconds = max(0, int(value.total_seconds()))
    return f"{seconds}s" if seconds < 60 else span(value)


def share(value: float | None, *, empty: str = "—") -> str:
    """A share as a whole percentage: '43%'."""
    return empty if value is None else f"{value:.0%}"


def size(n: int) -> str:
    """Bytes for people: '1.2 MB', '340 kB' (decimal units, as registries and GitHub show them)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
