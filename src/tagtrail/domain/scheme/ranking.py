"""Rank a repository's tags for one branch, newest first, without reading every tag's time.

A registry may hold thousands of tags per repository and the controller ranks them on every poll. When
the scheme's time sorts as text (UTC, YYYYMMDD-HHmmss and the like), the tags of the branch are found in
one pass of one regular expression over the joined list, keyed by that text; times are read later, only
for the few candidates the policy looks at, and the full order and the counts of the other tags are worked
out only when asked for. Other schemes take the exact path: every tag is parsed.

`Candidates` carries the fast path through the policy: the readable tags of a ranking, newest first, read
as far as the policy looks and no further (it decides on the first few; a repository holds thousands).
"""

from __future__ import annotations

import bisect
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property

from tagtrail.domain.scheme.parsed import ParsedTag, RejectCode, Rejected
from tagtrail.domain.scheme.tags import DIRTY_SUFFIX, Scheme
from tagtrail.domain.scheme.validity import CheckedTags, first_invalid_tag

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_BY_KEY = operator.itemgetter(1, 0)  # (tag, time text) pairs: by time, then by tag


class Ranking:
    """The tags of some branches by the time in the tag (ties: by tag, descending), and how many of the
    other tags were set aside, by reason. Build it with `rank`."""

    def __init__(self, scheme: Scheme, tags: Sequence[str], branches: Sequence[str]) -> None:
        self.scheme = scheme
        self.branches = tuple(branches)
        self._tokens = {scheme.branch_token(b) for b in self.branches}
        self._tags = tags
        self._pairs: list[tuple[str, str]] | None = None
        self._parsed: dict[str, ParsedTag | Rejected] = {}
        self._readings: list[ParsedTag | Rejected] = []
        if scheme.sortable and tags and (isinstance(tags, CheckedTags) or first_invalid_tag(tags) is None):
            self._joined = "\n".join(tags)
            self._pairs = scheme.key_regex(self.branches).findall(self._joined)
        else:
            self._readings = [self._read(tag) for tag in tags]
            self._parsed = {r.tag: r for r in self._readings}

    def _read(self, tag: str) -> ParsedTag | Rejected:
        if len(self.branches) == 1:
            return self.scheme.parse(tag, branch=self.branches[0])
        result = self.scheme.parse(tag)
        if isinstance(result, ParsedTag) and result.branch not in self._tokens:
            return Rejected(tag, "other-branch", f"is a build of branch '{result.branch}'")
        return result

    def newest(self) -> str | None:
        """The newest tag of the branch by the time in the tag, or None when there is none."""
        if self._pairs is not None:
            return max(self._pairs, key=_BY_KEY)[0] if self._pairs else None
        return self.newest_first[0] if self.newest_first else None

    @cached_property
    def newest_first(self) -> tuple[str, ...]:
        """Every tag of the branch, newest first."""
        if self._pairs is not None:
            return tuple(tag for tag, _ in sorted(self._pairs, key=_BY_KEY, reverse=True))
        eligible = [r for r in self._readings if isinstance(r, ParsedTag)]
        eligible.sort(key=lambda p: (max(p.instants, default=_EARLIEST), p.tag), reverse=True)
        return tuple(p.tag for p in eligible)

    @cached_property
    def ignored(self) -> dict[RejectCode, int]:
        """How many tags were set aside, by reason (other-scheme, other-branch, dirty; on the exact path
        also invalid-time and nonexistent-time)."""
        if self._pairs is None:
            return dict(Counter(r.code for r in self._readings if isinstance(r, Rejected)))
        of_scheme = self.scheme.count_regex.subn("", self._joined)[1]
        dirty = 0
        if DIRTY_SUFFIX in self._joined:  # a -dirty build is of no scheme as written; read those one by one
            stem = len(DIRTY_SUFFIX)
            dirty = sum(
                1
                for t in self._tags
                if t.endswith(DIRTY_SUFFIX) and self.scheme.count_regex.fullmatch(t[:-stem])
            )
        counts: dict[RejectCode, int] = {
            "other-scheme": len(self._tags) - of_scheme - dirty,
            "other-branch": of_scheme - len(self._pairs),
            "dirty": dirty,
        }
        return {code: n for code, n in counts.items() if n}

    def count_newer(self, tag: str) -> int | None:
        """How many ranked tags are dated after `tag`, by their time text alone (none of them read); None
        off the fast path or where `tag` is not a tag of these branches."""
        found = self.scheme.key_regex(self.branches).match(tag) if self._pairs is not None else None
        if found is None or found.end() != len(tag):
            return None
        return len(self._keys) - bisect.bisect_right(self._keys, found.group(2))

    @cached_property
    def _keys(self) -> list[str]:
        return sorted(text for _, text in self._pairs or ())

    def parse(self, tag: str) -> ParsedTag | Rejected:
        """The full reading of one ranked tag, read once (the policy asks again after each fact it needs)."""
        found = self._parsed.get(tag)
        if found is None:
            found = self._parsed[tag] = self._read(tag)
        return found


class Candidates:
    """The readable tags of a ranking, newest first, each read when first looked at. A ranked tag that
    cannot be read (on the fast path, an impossible date) is skipped and counted in `rejected` when it is
    met, so such counts cover what was looked at, not the whole list."""

    def __init__(self, ranking: Ranking, rejected: Counter[str]) -> None:
        self._ranking = ranking
        self._tags = ranking.newest_first
        self._next = 0
        self._read: list[ParsedTag] = []
        self._rejected = rejected
        self._head = 0  # how many first candidates were put in another order (`reorder`)

    def count_newer(self, tag: str) -> int | None:
        return self._ranking.count_newer(tag)

    def _more(self) -> bool:
        while self._next < len(self._tags):
            result = self._ranking.parse(self._tags[self._next])
            self._next += 1
            if isinstance(result, Rejected):
                self._rejected[result.code] += 1
            else:
                self._read.append(result)
                return True
        return False

    def __iter__(self) -> Iterator[ParsedTag]:
        index = 0
        while index < len(self._read) or self._more():
            yield self._read[index]
            index += 1

    def __bool__(self) -> bool:
        return bool(self._read) or self._more()

    def reorder(self, head: list[ParsedTag]) -> None:
        """Put the first len(head) candidates (ones that tie in time) in the order of `head`."""
        self._read[: len(head)] = head
        self._head = len(head)

    def until(self, stop: Callable[[ParsedTag], bool]) -> Iterator[ParsedTag]:
        """The candidates before the first one, past a reordered head, for which `stop` holds. For a `stop`
        that holds of a build and of every older one (older than X), that is every candidate `stop` does not
        hold of, and nothing older is read."""
        for index, candidate in enumerate(self):
            if index >= self._head and stop(candidate):
                return
            yield candidate


def rank(scheme: Scheme, tags: Sequence[str], branch: str | Sequence[str]) -> Ranking:
    """The tags of `branch` (or of any of several branches) in `tags`, ranked by the time in the tag."""
    return Ranking(scheme, tags, (branch,) if isinstance(branch, str) else tuple(branch))


# How builds compare in time (the policy's ordering guards).


def behind_count(ordered: Candidates | Iterable[ParsedTag], current: ParsedTag | None) -> int | None:
    """How many of `ordered` are newer than the running build (None: its time is unknown). Of
    `Candidates`, only those down to the running build's time are read."""
    if current is None or not current.instants:
        return None
    running = max(current.instants)
    if isinstance(ordered, Candidates):
        counted = ordered.count_newer(current.tag)  # a far-behind app's thousand newer tags: none read
        if counted is not None:
            return counted
        ordered = ordered.until(lambda c: not c.instants or max(c.instants) <= running)
    return sum(1 for c in ordered if c.instants and min(c.instants) > running)


def overlaps(a: ParsedTag, b: ParsedTag) -> bool:
    """Whether two tags could name the same moment (equal instants, or a DST overlap spanning both)."""
    if not a.instants or not b.instants:
        return False
    return min(a.instants) <= max(b.instants) and min(b.instants) <= max(a.instants)


def older(candidate: ParsedTag, running: ParsedTag | None, created: Mapping[str, datetime]) -> bool | None:
    """Whether the candidate is an older build than the running one; None when only `created` can tell.
    An unknown running build is never newer than anything."""
    if running is None or not running.instants or not candidate.instants:
        return False
    if not overlaps(candidate, running):
        return max(candidate.instants) < min(running.instants)
    if candidate.tag not in created or running.tag not in created:
        return None
    return (created[candidate.tag], candidate.tag) < (created[running.tag], running.tag)
