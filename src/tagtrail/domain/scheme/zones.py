"""Time zone names as metadata-action reads them, and local times turned back into instants.

moment-timezone looks names up case-insensitively, so `tz='asia/tokyo'` works there and works here. A name
it does not know is not an error in metadata-action: it logs and renders in the runner's zone, UTC on
GitHub's runners. tagtrail refuses such a name instead and suggests the one that was meant.
"""

from __future__ import annotations

import difflib
import zoneinfo
from datetime import UTC, datetime, tzinfo
from functools import cache

from tagtrail.errors import SchemeError


@cache
def _zone_names() -> dict[str, str]:
    names = {name.lower(): name for name in zoneinfo.available_timezones()}
    names.setdefault("utc", "UTC")
    return names


def resolve_zone(name: str) -> tzinfo:
    """Return the zone for a moment-timezone name, or raise SchemeError with the name it most likely meant."""
    canonical = _zone_names().get(name.strip().lower())
    if canonical is None:
        hint = suggest_zone(name)
        meant = f"; did you mean '{hint}'?" if hint else "; use an IANA name such as 'Europe/Berlin'"
        raise SchemeError(
            f"unknown time zone '{name}': metadata-action silently falls back to UTC for a name it does not "
            f"know, so its tags would not be in the zone you meant{meant}"
        )
    return UTC if canonical in ("UTC", "Etc/UTC") else zoneinfo.ZoneInfo(canonical)


def suggest_zone(name: str) -> str | None:
    """The zone a misspelt name most likely means: same city (`Pacific/Los Angeles`), else the closest name."""
    wanted = name.strip().replace(" ", "_").lower()
    names = _zone_names()
    if wanted in names:
        return names[wanted]
    city = wanted.rsplit("/", 1)[-1]
    by_city = sorted(canonical for lower, canonical in names.items() if lower.rsplit("/", 1)[-1] == city)
    if by_city:
        return by_city[0]
    close = difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.6)
    return names[close[0]] if close else None


def local_to_instants(local: datetime, zone: tzinfo) -> tuple[datetime, ...]:
    """Every UTC instant at which the wall clock in `zone` read `local` (naive).

    One instant normally; two, earlier first, inside a DST overlap; none inside a DST gap.
    """
    found = set()
    for fold in (0, 1):
        aware = local.replace(tzinfo=zone, fold=fold)
        instant = aware.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == local:
            found.add(instant)
    return tuple(sorted(found))
