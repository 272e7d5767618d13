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

The pieces: `validity` (the tag grammar), `parsed` (what a parse gives), `atoms` (the template compiled,
rendered and turned into regexes), `times` (the time in a tag read back); the Scheme here ties them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from tagtrail.domain.scheme.atoms import Atom, DateSlot, compile_template, escape, pattern, render
from tagtrail.domain.scheme.parsed import ParsedTag, Rejected
from tagtrail.domain.scheme.times import TimeReader
from tagtrail.domain.scheme.validity import MAX_TAG_LENGTH, is_valid_tag, sanitize_tag
from tagtrail.errors import SchemeError

DIRTY_SUFFIX = "-dirty"
_NOT_A_TAG = "is not a valid tag (letters, digits, '_', '.', '-'; at most 128)"


@dataclass(frozen=True)
class Scheme:
    """A compiled tag template. Build it with `Scheme.compile`; it never changes afterwards."""

    template: str
    sha_length: int
    _atoms: tuple[Atom, ...] = field(repr=False)
    _date: DateSlot | None = field(repr=False)

    @classmethod
    def compile(cls, template: str, sha_length: int = 7) -> Scheme:
        """Check the template and build the scheme; every problem is a SchemeError saying what to write."""
        if not 4 <= sha_length <= 64:
            raise SchemeError(f"sha length {sha_length} is out of range: use 4 to 64 (7 is git's default)")
        atoms, date = compile_template(template)
        return cls(template, sha_length, atoms, date)

    @property
    def has_time(self) -> bool:
        return self._date is not None

    @property
    def time_source(self) -> str | None:
        """`date` (build time), `commit_date`, or None when tags carry no time."""
        return self._date.kind if self._date else None

    def branch_token(self, branch: str) -> str:
        """How a branch name appears inside tags of this scheme (`feature/x` → `feature-x`)."""
        return sanitize_tag(escape(_strip_ref(branch), escaped=True))

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
        tag = sanitize_tag(
            render(self._atoms, self.sha_length, branch, sha.lower(), local, escape_branch=True)
        )
        if len(tag) > MAX_TAG_LENGTH:
            keep = len(self.branch_token(branch)) - (len(tag) - MAX_TAG_LENGTH)
            if keep < 1:
                raise SchemeError(
                    f"the scheme gives tags over {MAX_TAG_LENGTH} characters even with a 1-character branch"
                )
            tag = sanitize_tag(
                render(
                    self._atoms,
                    self.sha_length,
                    self.branch_token(branch)[:keep],
                    sha.lower(),
                    local,
                    escape_branch=False,
                )
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
        instants = self._times.instants(match) if self._times is not None else ()
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
            found = self._by_branch[token] = re.compile(pattern(self._atoms, self.sha_length, branch=token))
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
        return re.compile(pattern(self._atoms, self.sha_length))

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
                f"(?m)^({pattern(self._atoms, self.sha_length, tokens, groups=False, key=True)})$"
            )
        return found

    @cached_property
    def count_regex(self) -> re.Pattern[str]:
        """Multi-line regex matching each tag of the scheme, of any branch, capturing nothing."""
        return re.compile(f"(?m)^{pattern(self._atoms, self.sha_length, groups=False)}$")

    @cached_property
    def _key_regexes(self) -> dict[tuple[str, ...], re.Pattern[str]]:
        return {}

    @cached_property
    def _times(self) -> TimeReader | None:
        return TimeReader(self._date, self._atoms) if self._date is not None else None


def _strip_ref(branch: str) -> str:
    return branch.removeprefix("refs/heads/")
