"""Reading the time written in a tag back into the instant (or, in a DST overlap, the two instants) it names.

Thousands of tags may be read per poll, so the common case is kept short: a UTC time made of integers in
calendar order (YYYYMMDD-HHmmss and the like) is one datetime call. Other formats go field by field, and a
local time is mapped to UTC through its zone, refusing a time that does not exist there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tagtrail.domain.scheme.atoms import Atom, DateSlot, Time
from tagtrail.domain.scheme.parsed import Rejected
from tagtrail.domain.scheme.zones import local_to_instants

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CALENDAR = ("year", "month", "day", "hour", "minute", "second")


class TimeReader:
    """Reads the instants a tag of one scheme names, from the match of the scheme's regex."""

    def __init__(self, date: DateSlot, atoms: tuple[Atom, ...]) -> None:
        self._date = date
        self._readers: tuple[tuple[str, Callable[[str], int]], ...] = tuple(
            (a.token.field, a.token.read) for a in atoms if isinstance(a, Time)
        )
        self._calendar = self._calendar_fields()
        self._has_clock = date.fmt.has_clock

    def _calendar_fields(self) -> tuple[str, ...] | None:
        """The fields, in calendar order, when a UTC time is just integers in a row (YYYYMMDD-HHmmss and
        the like): then reading a time is one datetime call. None when the slow path is needed."""
        if self._date.zone is not UTC:
            return None
        fields = tuple(field for field, _ in self._readers)
        ordered = tuple(f for f in _CALENDAR if f in fields)
        simple = all(read is int for _, read in self._readers)
        return (
            ordered
            if simple and set(fields) == set(ordered) and ordered == _CALENDAR[: len(ordered)]
            else None
        )

    def instants(self, match: re.Match[str]) -> tuple[datetime, ...] | Rejected:
        calendar = self._calendar
        if calendar is not None:
            try:
                return (datetime(*map(int, match.group(*calendar)), tzinfo=UTC),)  # type: ignore[arg-type, misc]
            except ValueError as exc:
                return Rejected(match.string, "invalid-time", f"does not hold a real date and time ({exc})")
        values = {field: read(match[field]) for field, read in self._readers}
        tag = match.string
        if "epoch_ms" in values:
            return (_EPOCH + timedelta(milliseconds=values["epoch_ms"]),)
        if "epoch_s" in values:
            return (_EPOCH + timedelta(seconds=values["epoch_s"]),)
        hour = values.get("hour", 0)
        if "hour12" in values:
            if not 1 <= values["hour12"] <= 12:
                return Rejected(tag, "invalid-time", f"hour {values['hour12']} is not on a 12-hour clock")
            hour = values["hour12"] % 12 + (12 if values["meridiem"] else 0)
        try:
            local = datetime(
                values["year"],
                values["month"],
                values["day"],
                hour,
                values.get("minute", 0),
                values.get("second", 0),
                values.get("millisecond", 0) * 1000,
            )
        except ValueError as exc:
            return Rejected(tag, "invalid-time", f"does not hold a real date and time ({exc})")
        if "weekday" in values and (local.weekday() + 1) % 7 != values["weekday"]:
            return Rejected(tag, "invalid-time", "names a weekday that does not fall on its date")
        if self._date.zone is UTC:  # the common case, and the hot path when thousands of tags are read
            return (local.replace(tzinfo=UTC),)
        if not self._has_clock:
            return (local.replace(tzinfo=self._date.zone).astimezone(UTC),)
        instants = local_to_instants(local, self._date.zone)
        if not instants:
            return Rejected(
                tag,
                "nonexistent-time",
                f"names {local:%Y-%m-%d %H:%M}, a local time that does not exist in {self._date.zone} (DST gap)",
            )
        return instants
