"""The tag scheme: one metadata-action template gives both a formatter and a parser.

Formatting follows metadata-action exactly: each `{{…}}` is rendered (and HTML-escaped, as Handlebars does
for double braces), the pieces are joined, and every run of characters outside `[A-Za-z0-9_.-]` becomes a
single `-`. Where that would give a tag longer than registries accept (128 characters, a tag metadata-action
would emit and the push would then fail on), the branch part is shortened so the tag still parses.

Parsing works on that sanitised text: the template becomes an anchored regular expression in which the
branch is the only part that may contain separators. Every other field has a fixed width or is a run of
digits bounded by non-digits, and a template where two variable parts touch is refused when compiled, so
each tag splits exactly one way: a branch containing the separator (`feature.v2`) or made only of digits
is read correctly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from typing import Literal as TypingLiteral

from tagtrail.errors import SchemeError
from tagtrail.scheme.moment import DateFormat, Token, compile_format
from tagtrail.scheme.template import Expression, Literal, split_template
from tagtrail.scheme.zones import local_to_instants, resolve_zone

MAX_TAG_LENGTH = 128
DIRTY_SUFFIX = "-dirty"
_INVALID_RUN = re.compile(r"[^a-zA-Z0-9._-]+")
_VALID_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HANDLEBARS_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_A_TAG = "is not a valid tag (letters, digits, '_', '.', '-'; at most 128)"
_CALENDAR = ("year", "month", "day", "hour", "minute", "second")
_NOT_SCHEME_EXPRESSIONS = {"tag", "base_ref", "is_default_branch", "is_not_default_branch"}

RejectCode = TypingLiteral["other-scheme", "other-branch", "dirty", "invalid-time", "nonexistent-time"]


def sanitize_tag(text: str) -> str:
    """What metadata-action does to a tag: each run of characters a tag cannot hold becomes one `-`."""
    return _INVALID_RUN.sub("-", text)


def is_valid_tag(text: str) -> bool:
    """Whether a registry accepts `text` as a tag (the OCI distribution spec's tag grammar)."""
    return _VALID_TAG.fullmatch(text) is not None


_VALID_LINES = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:\n[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})*")


class CheckedTags(list[str]):
    """Tags that `first_invalid_tag` has found valid (the registry client returns these), so ranking need
    not check them again. Not to be changed after it is made."""


def first_invalid_tag(tags: Sequence[object]) -> object | None:
    """The first item of `tags` that is not a valid tag (or not a string), or None; one join and one regex
    pass for the usual case, where all are fine."""
    try:
        joined = "\n".join(tags)  # type: ignore[arg-type]  # a non-string raises TypeError: the slow path finds it
    except TypeError:
        joined = ""
    if not tags or (_VALID_LINES.fullmatch(joined) and joined.count("\n") == len(tags) - 1):
        return None
    return next(t for t in tags if not isinstance(t, str) or not is_valid_tag(t))


def _escape(text: str, escaped: bool) -> str:
    return text.translate(_HANDLEBARS_ESCAPES) if escaped else text


@dataclass(frozen=True)
class ParsedTag:
    """A tag of the scheme: the branch as it appears in the tag, the short sha, and when it was made.

    `instants` is empty for a scheme without a date, holds one UTC instant normally, and two (earlier first)
    when the local time written in the tag fell in a DST overlap.
    """

    tag: str
    branch: str
    sha: str
    instants: tuple[datetime, ...]

    @property
    def time(self) -> datetime | None:
        """The one instant the tag names; None when the scheme has no date or the time is ambiguous."""
        return self.instants[0] if len(self.instants) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.instants) > 1


@dataclass(frozen=True)
class Rejected:
    """A tag that is not of the scheme, with a stable code and a sentence a person can act on."""

    tag: str
    code: RejectCode
    reason: str


@dataclass(frozen=True)
class _Text:
    raw: str


@dataclass(frozen=True)
class _Field:
    kind: TypingLiteral["branch", "sha"]
    escaped: bool


@dataclass(frozen=True)
class _Time:
    token: Token
    escaped: bool


_Atom = _Text | _Field | _Time


@dataclass(frozen=True)
class _DateSlot:
    kind: TypingLiteral["date", "commit_date"]
    fmt: DateFormat
    zone: tzinfo


@dataclass(frozen=True)
class Scheme:
    """A compiled tag template. Build it with `Scheme.compile`; it never changes afterwards."""

    template: str
    sha_length: int
    _atoms: tuple[_Atom, ...] = field(repr=False)
    _date: _DateSlot | None = field(repr=False)

    @classmethod
    def compile(cls, template: str, sha_length: int = 7) -> Scheme:
        """Check the template and build the scheme; every problem is a SchemeError saying what to write."""
        if not 4 <= sha_length <= 64:
            raise SchemeError(f"sha length {sha_length} is out of range: use 4 to 64 (7 is git's default)")
        atoms: list[_Atom] = []
        date: _DateSlot | None = None
        seen: set[str] = set()
        for part in split_template(template):
            if isinstance(part, Literal):
                atoms.append(_Text(part.text))
                continue
            kind = _expression_kind(part)
            if kind in seen or (kind in ("date", "commit_date") and date is not None):
                raise SchemeError(
                    f"{part.source} appears more than once; a scheme reads one branch, sha and time"
                )
            seen.add(kind)
            if kind in ("branch", "sha"):
                atoms.append(_Field("branch" if kind == "branch" else "sha", part.escaped))
            else:
                date = _DateSlot("date" if kind == "date" else "commit_date", *_date_parts(part))
                atoms.extend(
                    _Text(_escape(i, part.escaped)) if isinstance(i, str) else _Time(i, part.escaped)
                    for i in date.fmt.items
                )
        for required, why in (
            ("sha", "it is how a running image is traced to its commit"),
            ("branch", "it is how eligible builds are told from others"),
        ):
            if required not in seen:
                raise SchemeError(f"the scheme '{template}' has no {{{{{required}}}}}: {why}")
        scheme = cls(template, sha_length, tuple(atoms), date)
        scheme._check_adjacency()
        return scheme

    @property
    def has_time(self) -> bool:
        return self._date is not None

    @property
    def time_source(self) -> str | None:
        """`date` (build time), `commit_date`, or None when tags carry no time."""
        return self._date.kind if self._date else None

    def branch_token(self, branch: str) -> str:
        """How a branch name appears inside tags of this scheme (`feature/x` → `feature-x`)."""
        return sanitize_tag(_escape(_strip_ref(branch), escaped=True))

    def format(self, *, branch: str, sha: str, time: datetime, commit_time: datetime | None = None) -> str:
        """The tag metadata-action would give for this branch, commit and time (aware datetimes)."""
        branch = _strip_ref(branch)
        if not branch:
            raise SchemeError(
                "the branch is empty: metadata-action renders {{branch}} empty outside branch builds"
            )
        if not re.fullmatch(r"[0-9a-fA-F]{%d,64}" % self.sha_length, sha):  # noqa: UP031
            raise SchemeError(f"'{sha}' is not a commit sha of at least {self.sha_length} hex characters")
        moment = time if self._date is None or self._date.kind == "date" else (commit_time or time)
        if moment.tzinfo is None:
            raise SchemeError("the time has no zone; give an aware datetime (e.g. in UTC)")
        local = moment.astimezone(self._date.zone) if self._date else moment
        tag = sanitize_tag(self._render(branch, sha.lower(), local, escape_branch=True))
        if len(tag) > MAX_TAG_LENGTH:
            keep = len(self.branch_token(branch)) - (len(tag) - MAX_TAG_LENGTH)
            if keep < 1:
                raise SchemeError(
                    f"the scheme gives tags over {MAX_TAG_LENGTH} characters even with a 1-character branch"
                )
            tag = sanitize_tag(
                self._render(self.branch_token(branch)[:keep], sha.lower(), local, escape_branch=False)
            )
        if not is_valid_tag(tag):
            raise SchemeError(
                f"'{tag}' is not a tag a registry accepts: it must start with a letter, digit or '_'"
            )
        return tag

    def parse(self, tag: str, *, branch: str | None = None) -> ParsedTag | Rejected:
        """Read a tag back into branch, sha and time, or say why it is not a tag of this scheme.

        With `branch`, a tag of another branch is refused as `other-branch` before its time is read: the
        fast path for picking among thousands of tags, most of them not of the branch that deploys."""
        if len(tag) > MAX_TAG_LENGTH or tag[:1] in ("", ".", "-"):  # the rest of the grammar is in the regex
            return Rejected(tag, "other-scheme", _NOT_A_TAG)
        if branch is not None:
            token = self.branch_token(branch)
            match = self._branch_regex(token).fullmatch(tag)
            if match is None:
                other = self._regex.fullmatch(tag)
                if other is not None:
                    return Rejected(
                        tag, "other-branch", f"is a build of branch '{other['branch']}', not '{token}'"
                    )
                return self._refuse(tag)
            branch_text = token
        else:
            match = self._regex.fullmatch(tag)
            if match is None:
                return self._refuse(tag)
            branch_text = match["branch"]
        instants = self._instants(match)
        if isinstance(instants, Rejected):
            return instants
        return ParsedTag(tag, branch_text, match["sha"], instants)

    def _refuse(self, tag: str) -> Rejected:
        if not is_valid_tag(tag):
            return Rejected(tag, "other-scheme", _NOT_A_TAG)
        if tag.endswith(DIRTY_SUFFIX) and self._regex.fullmatch(tag[: -len(DIRTY_SUFFIX)]):
            return Rejected(tag, "dirty", "was built from a work tree with uncommitted changes (-dirty)")
        return Rejected(tag, "other-scheme", f"does not match the scheme (its tags look like {self.example})")

    def _branch_regex(self, token: str) -> re.Pattern[str]:
        found = self._by_branch.get(token)
        if found is None:
            found = self._by_branch[token] = re.compile(self._pattern(branch=token))
        return found

    @cached_property
    def _by_branch(self) -> dict[str, re.Pattern[str]]:
        return {}

    @cached_property
    def example(self) -> str:
        """A tag of this scheme, for messages: branch main, a fixed sha and time."""
        return self.format(
            branch="main", sha="185c95c" + "0" * 57, time=datetime(2025, 10, 14, 5, 10, 38, tzinfo=UTC)
        )

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(self._pattern())

    @cached_property
    def _readers(self) -> tuple[tuple[str, Callable[[str], int]], ...]:
        return tuple((a.token.field, a.token.read) for a in self._atoms if isinstance(a, _Time))

    @cached_property
    def _has_clock(self) -> bool:
        return self._date is not None and self._date.fmt.has_clock

    def _render(self, branch: str, sha: str, local: datetime, *, escape_branch: bool) -> str:
        out: list[str] = []
        for atom in self._atoms:
            if isinstance(atom, _Text):
                out.append(atom.raw)
            elif isinstance(atom, _Time):
                out.append(_escape(atom.token.render(local), atom.escaped))
            elif atom.kind == "branch":
                out.append(_escape(branch, atom.escaped and escape_branch))
            else:
                out.append(sha[: self.sha_length])
        return "".join(out)

    def _pattern(
        self,
        branch: str | tuple[str, ...] | None = None,
        *,
        groups: bool = True,
        key: bool = False,
        branch_group: bool = False,
    ) -> str:
        """The regex of a tag. `branch` fixes the branch; without `groups` nothing is captured but, with
        `key`, the span from the first to the last time token and, with `branch_group`, the branch."""
        pieces: list[tuple[str, bool]] = []  # (regex, is a time token)
        text = ""
        for atom in (*self._atoms, None):
            if isinstance(atom, _Text):
                text += atom.raw
                continue
            if text:
                pieces.append((re.escape(sanitize_tag(text)), False))
                text = ""
            if atom is None:
                break
            if isinstance(atom, _Time):
                body = atom.token.pattern
                pieces.append((f"(?P<{atom.token.field}>{body})" if groups else f"(?:{body})", True))
            elif atom.kind == "branch":
                body = r"[A-Za-z0-9_.-]+"
                named = f"(?P<branch>{body})" if groups or branch_group else f"(?:{body})"
                if isinstance(branch, tuple):
                    fixed = "(?:" + "|".join(re.escape(b) for b in branch) + ")"
                else:
                    fixed = re.escape(branch) if branch is not None else named
                pieces.append((fixed, False))
            else:
                body = f"[0-9a-f]{{{self.sha_length}}}"
                pieces.append((f"(?P<sha>{body})" if groups else f"(?:{body})", False))
        if key:
            times = [i for i, (_, is_time) in enumerate(pieces) if is_time]
            first, last = times[0], times[-1]
            span = "".join(regex for regex, _ in pieces[first : last + 1])
            pieces = [*pieces[:first], (f"({span})", True), *pieces[last + 1 :]]
        return "".join(regex for regex, _ in pieces)

    @cached_property
    def sortable(self) -> bool:
        """Whether the time text in a tag sorts as the time does: UTC, fixed-width numeric fields in calendar
        order (YYYYMMDD-HHmmss and the like). Then tags can be ranked without reading their times."""
        if self._date is None or self._date.zone is not UTC:
            return False
        order = ("year", "month", "day", "hour", "minute", "second", "millisecond")
        tokens = [i for i in self._date.fmt.items if not isinstance(i, str)]
        fixed = all(t.text in ("YYYY", "MM", "DD", "HH", "mm", "ss") or set(t.text) == {"S"} for t in tokens)
        fields = [t.field for t in tokens]
        return (
            fixed and fields == [f for f in order if f in fields] and fields[:3] == ["year", "month", "day"]
        )

    def key_regex(self, branches: tuple[str, ...]) -> re.Pattern[str]:
        """Multi-line regex over newline-joined tags: each tag of one of `branches` (group 1) with its time
        text (group 2, see `sortable`). Lines of other branches fail on their first characters: cheap."""
        tokens = tuple(sorted({self.branch_token(b) for b in branches}, key=len, reverse=True))
        found = self._key_regexes.get(tokens)
        if found is None:
            found = self._key_regexes[tokens] = re.compile(
                f"(?m)^({self._pattern(tokens, groups=False, key=True)})$"
            )
        return found

    @cached_property
    def count_regex(self) -> re.Pattern[str]:
        """Multi-line regex matching each tag of the scheme, of any branch, capturing nothing."""
        return re.compile(f"(?m)^{self._pattern(groups=False)}$")

    @cached_property
    def _key_regexes(self) -> dict[tuple[str, ...], re.Pattern[str]]:
        return {}

    @cached_property
    def _calendar_fields(self) -> tuple[str, ...] | None:
        """The fields, in calendar order, when a UTC time is just integers in a row (YYYYMMDD-HHmmss and
        the like): then reading a time is one datetime call. None when the slow path is needed."""
        if self._date is None or self._date.zone is not UTC:
            return None
        fields = tuple(field for field, _ in self._readers)
        ordered = tuple(f for f in _CALENDAR if f in fields)
        simple = all(read is int for _, read in self._readers)
        return (
            ordered
            if simple and set(fields) == set(ordered) and ordered == _CALENDAR[: len(ordered)]
            else None
        )

    def _instants(self, match: re.Match[str]) -> tuple[datetime, ...] | Rejected:
        if self._date is None:
            return ()
        calendar = self._calendar_fields
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

    def _check_adjacency(self) -> None:
        """Refuse templates where two parts of no fixed width touch: their tags could split two ways."""
        atoms = [a for a in self._atoms if not (isinstance(a, _Text) and a.raw == "")]
        for left, right in itertools.pairwise(atoms):
            if isinstance(left, _Text) or isinstance(right, _Text):
                continue
            is_branch = isinstance(left, _Field) and left.kind == "branch"
            right_variable = (isinstance(right, _Field) and right.kind == "branch") or (
                isinstance(right, _Time) and right.token.variable
            )
            right_digits = isinstance(right, _Field) or right.token.numeric
            left_digit_run = isinstance(left, _Time) and left.token.variable
            if (is_branch and right_variable) or (left_digit_run and right_digits):
                raise SchemeError(
                    f"in '{self.template}', {_describe(left)} runs into {_describe(right)} with nothing between"
                    " them, so a tag could be read two ways; put a separator there or use a zero-padded token"
                )


def _describe(atom: _Field | _Time) -> str:
    return f"'{atom.token.text}'" if isinstance(atom, _Time) else f"{{{{{atom.kind}}}}}"


def _strip_ref(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


def _expression_kind(part: Expression) -> str:
    if part.name in _NOT_SCHEME_EXPRESSIONS:
        raise SchemeError(
            f"{part.source} is not usable in a tag scheme: it is empty or constant on branch builds; a scheme is made"
            " of {{branch}}, {{sha}}, {{date 'FORMAT'}} or {{commit_date 'FORMAT'}}, and literal text"
        )
    if part.name not in ("branch", "sha", "date", "commit_date"):
        raise SchemeError(
            f"unknown expression {part.source} at character {part.offset + 1}; a scheme is made of {{{{branch}}}},"
            " {{sha}}, {{date 'FORMAT' tz='ZONE'}}, {{commit_date 'FORMAT' tz='ZONE'}} and literal text"
        )
    if part.name in ("branch", "sha") and (part.args or part.options):
        raise SchemeError(
            f"{part.source} takes no arguments"
            + ("; the sha length is set with sha_length in tagtrail.yaml" if part.name == "sha" else "")
        )
    return part.name


def _date_parts(part: Expression) -> tuple[DateFormat, tzinfo]:
    if len(part.args) != 1:
        raise SchemeError(
            f"{part.source} needs exactly one format, e.g. {{{{{part.name} 'YYYYMMDD-HHmmss'}}}}"
        )
    unknown = [key for key, _ in part.options if key != "tz"]
    if unknown:
        raise SchemeError(f"{part.source}: unknown option '{unknown[0]}' (only tz='ZONE' is accepted)")
    return compile_format(part.args[0]), resolve_zone(part.option("tz") or "UTC")
