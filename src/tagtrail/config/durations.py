"""Durations in tagtrail.yaml ('90s', '10m', '2h', '1d'): one reading, shared by every section."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)?")
_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """'90s', '10m', '2h', '1d' (or a number of seconds) as a timedelta; refuses anything else."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            return timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    raise ValueError(f"'{value}' is not a duration such as 30s, 10m, 2h or 1d")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{int(d.total_seconds())}s", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\s*(ms|s|m|h|d|w)?$"}),
]


def _at_least_a_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError("a poll interval must be at least 1s (0s would poll without pause)")
    return value


# How often something is polled: a busy loop is never what anyone meant.
Interval = Annotated[Duration, AfterValidator(_at_least_a_second)]
