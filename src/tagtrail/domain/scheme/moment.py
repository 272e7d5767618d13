"""moment.js format strings, as metadata-action's `{{date 'FORMAT'}}` renders them, read both ways.

A format is tokenized the way moment tokenizes it (`[literal]`, `\\x` escapes, longest token first), then
each token knows how to render a local time and how to read its own text back. Tokens that lose information
a tag needs for ordering (a 12-hour clock without AM/PM, an offset whose sign the tag sanitiser turns into
`-`) or that moment supports but tagtrail does not read (week numbers, quarters, locale formats) are refused
when the scheme is compiled, never at the first deploy.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tagtrail.errors import SchemeError

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MONTHS_SHORT = [m[:3] for m in MONTHS]
WEEKDAYS_SHORT = [w[:3] for w in WEEKDAYS]
WEEKDAYS_MIN = [w[:2] for w in WEEKDAYS]

# moment's own tokenizer, in its order: a bracketed literal, an escaped character, or the longest token.
_MOMENT_TOKENS = re.compile(
    r"(\[[^\[]*\])|(\\)?(LTS|LT|LL?L?L?|l{1,4}|[Hh]mm(?:ss)?|Mo|MM?M?M?|Do|DDDo|DD?D?D?|ddd?d?|do?|w[o|w]?"
    r"|W[o|W]?|Qo?|N{1,5}|YYYYYY|YYYYY|YYYY|YY|y{2,4}|yo?|gg(?:ggg?)?|GG(?:GGG?)?|e|E|a|A|hh?|HH?|kk?|mm?"
    r"|ss?|S{1,9}|x|X|zz?|ZZ?|Y|.)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    """One moment token: the field it carries, how to render it and the regex that reads it back."""

    text: str
    field: str
    pattern: str
    render: Callable[[datetime], str]
    read: Callable[[str], int]
    variable: bool = False  # a run of digits of no fixed width: must not touch another digit token

    @property
    def numeric(self) -> bool:
        return self.pattern.startswith((r"\d", "[0-6]"))


Item = str | Token


def _pad(width: int, value: Callable[[datetime], int]) -> Callable[[datetime], str]:
    return lambda dt: f"{value(dt):0{width}d}"


def _plain(value: Callable[[datetime], int]) -> Callable[[datetime], str]:
    return lambda dt: str(value(dt))


def _hour12(dt: datetime) -> int:
    return dt.hour % 12 or 12


def _weekday(dt: datetime) -> int:
    return (dt.weekday() + 1) % 7  # moment counts from Sunday


def _ordinal(day: int) -> str:
    if (day % 100) // 10 == 1:
        return f"{day}th"
    return f"{day}" + {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _epoch_ms(dt: datetime) -> int:
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _names(names: list[str]) -> str:
    return "(?:" + "|".join(sorted(names, key=len, reverse=True)) + ")"


def _two_digit_year(text: str) -> int:
    value = int(text)
    return value + (1900 if value > 68 else 2000)  # moment's parseTwoDigitYear


def _fraction(width: int) -> Token:
    def render(dt: datetime) -> str:
        ms = f"{dt.microsecond // 1000:03d}"
        return (ms + "0" * width)[:width]

    return Token("S" * width, "millisecond", rf"\d{{{width}}}", render, lambda t: int((t + "00")[:3]))


def _build_tokens() -> dict[str, Token]:
    tokens = [
        Token("YYYY", "year", r"\d{4}", _pad(4, lambda d: d.year), int),
        # Two digits read back as 1969-2068, moment's own window.
        Token("YY", "year", r"\d{2}", _pad(2, lambda d: d.year % 100), _two_digit_year),
        Token("M", "month", r"\d{1,2}", _plain(lambda d: d.month), int, variable=True),
        Token("MM", "month", r"\d{2}", _pad(2, lambda d: d.month), int),
        Token(
            "MMM",
            "month",
            _names(MONTHS_SHORT),
            lambda d: MONTHS_SHORT[d.month - 1],
            lambda t: MONTHS_SHORT.index(t) + 1,
        ),
        Token("MMMM", "month", _names(MONTHS), lambda d: MONTHS[d.month - 1], lambda t: MONTHS.index(t) + 1),
        Token("D", "day", r"\d{1,2}", _plain(lambda d: d.day), int, variable=True),
        Token("DD", "day", r"\d{2}", _pad(2, lambda d: d.day), int),
        Token(
            "Do",
            "day",
            r"\d{1,2}(?:st|nd|rd|th)",
            lambda d: _ordinal(d.day),
            lambda t: int(t[:-2]),
            variable=True,
        ),
        Token("d", "weekday", r"[0-6]", _plain(_weekday), int),
        Token(
            "dd",
            "weekday",
            _names(WEEKDAYS_MIN),
            lambda d: WEEKDAYS_MIN[_weekday(d)],
            WEEKDAYS_MIN.index,
        ),
        Token(
            "ddd",
            "weekday",
            _names(WEEKDAYS_SHORT),
            lambda d: WEEKDAYS_SHORT[_weekday(d)],
            WEEKDAYS_SHORT.index,
        ),
        Token("dddd", "weekday", _names(WEEKDAYS), lambda d: WEEKDAYS[_weekday(d)], WEEKDAYS.index),
        Token("H", "hour", r"\d{1,2}", _plain(lambda d: d.hour), int, variable=True),
        Token("HH", "hour", r"\d{2}", _pad(2, lambda d: d.hour), int),
        Token("h", "hour12", r"\d{1,2}", _plain(_hour12), int, variable=True),
        Token("hh", "hour12", r"\d{2}", _pad(2, _hour12), int),
        Token("a", "meridiem", r"(?:am|pm)", lambda d: "pm" if d.hour >= 12 else "am", lambda t: t == "pm"),
        Token("A", "meridiem", r"(?:AM|PM)", lambda d: "PM" if d.hour >= 12 else "AM", lambda t: t == "PM"),
        Token("m", "minute", r"\d{1,2}", _plain(lambda d: d.minute), int, variable=True),
        Token("mm", "minute", r"\d{2}", _pad(2, lambda d: d.minute), int),
        Token("s", "second", r"\d{1,2}", _plain(lambda d: d.second), int, variable=True),
        Token("ss", "second", r"\d{2}", _pad(2, lambda d: d.second), int),
        Token(
            "X", "epoch_s", r"\d{1,12}", lambda d: str(math.floor(_epoch_ms(d) / 1000)), int, variable=True
        ),
        Token("x", "epoch_ms", r"\d{1,15}", _plain(_epoch_ms), int, variable=True),
    ]
    tokens += [_fraction(width) for width in range(1, 10)]
    return {t.text: t for t in tokens}


TOKENS = _build_tokens()
_COMPOSITES = {"Hmm": "H mm", "Hmmss": "H mm ss", "hmm": "h mm", "hmmss": "h mm ss"}
_REFUSED = {
    "Z": "an offset token loses its sign in a tag ('+' becomes '-'); name the zone with tz='…' instead",
    "ZZ": "an offset token loses its sign in a tag ('+' becomes '-'); name the zone with tz='…' instead",
    "z": "zone abbreviations are ambiguous; name the zone with tz='…' instead",
    "zz": "zone abbreviations are ambiguous; name the zone with tz='…' instead",
}


def _refusal(token: str) -> str | None:
    if token in _REFUSED:
        return _REFUSED[token]
    if re.fullmatch(r"LTS|LT|L{1,4}|l{1,4}", token):
        return "locale formats depend on the runner's locale; spell the format out"
    if re.fullmatch(
        r"[kK]{1,2}|DDDo?|DDDD|do|[wW][ow]?|WW|Qo?|N{1,5}|Y{1,6}|y{1,4}|yo|g{2,5}|G{2,5}|[eE]|Mo", token
    ):
        return (
            "tagtrail does not read this token back; use YYYY MM DD HH mm ss (and SSS) for an orderable tag"
        )
    return None


@dataclass(frozen=True)
class DateFormat:
    """A compiled moment format: literal text and tokens, each field at most once."""

    source: str
    items: tuple[Item, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(i.field for i in self.items if isinstance(i, Token))

    @property
    def has_clock(self) -> bool:
        """Whether the format carries a time of day (only then can a local time fall in a DST gap)."""
        return bool(self.fields & {"hour", "hour12"})

    def render(self, local: datetime) -> str:
        return "".join(i if isinstance(i, str) else i.render(local) for i in self.items)


def compile_format(fmt: str) -> DateFormat:
    """Tokenize a moment format and check that a tag rendered from it can be read back to one instant."""
    if not fmt:
        raise SchemeError("the date format is empty; use e.g. 'YYYYMMDD-HHmmss'")
    items: list[Item] = []
    for match in _MOMENT_TOKENS.finditer(fmt):
        bracketed, escaped, token = match.group(1), match.group(2), match.group(3)
        if bracketed is not None:
            items.append(bracketed[1:-1])
        elif escaped or (token not in TOKENS and token not in _COMPOSITES):
            refusal = None if escaped else _refusal(token)
            if refusal is not None:
                raise SchemeError(f"date format '{fmt}': token '{token}': {refusal}")
            items.append(token)
        else:
            items.extend(TOKENS[t] for t in _COMPOSITES.get(token, token).split())
    _check(fmt, items)
    return DateFormat(fmt, tuple(_merge_literals(items)))


def _merge_literals(items: list[Item]) -> list[Item]:
    merged: list[Item] = []
    for item in items:
        if isinstance(item, str) and merged and isinstance(merged[-1], str):
            merged[-1] += item
        elif item != "":
            merged.append(item)
    return merged


def _check(fmt: str, items: list[Item]) -> None:
    tokens = [i for i in items if isinstance(i, Token)]
    seen: dict[str, str] = {}
    for token in tokens:
        if token.field in seen:
            raise SchemeError(
                f"date format '{fmt}': '{seen[token.field]}' and '{token.text}' both give the {token.field}"
            )
        seen[token.field] = token.text
    fields = set(seen)
    if not fields & {"epoch_s", "epoch_ms"} and not {"year", "month", "day"} <= fields:
        raise SchemeError(
            f"date format '{fmt}' must contain a year, month and day (or X/x) so that tags can be ordered"
        )
    if "hour12" in fields and "meridiem" not in fields:
        raise SchemeError(f"date format '{fmt}': '{seen['hour12']}' is a 12-hour clock; add 'A' or use 'HH'")
    merged = _merge_literals(items)
    for left, right in itertools.pairwise(merged):
        if isinstance(left, Token) and isinstance(right, Token) and left.variable and right.numeric:
            raise SchemeError(
                f"date format '{fmt}': '{left.text}' and '{right.text}' run together and cannot be read back;"
                f" put a separator between them or use the zero-padded form"
            )
