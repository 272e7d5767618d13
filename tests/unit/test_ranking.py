"""Ranking tags of one branch: the fast path (time text sorts as time) agrees with the exact path."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagtrail.domain.scheme import Candidates, ParsedTag, Ranking, Scheme, rank
from tagtrail.domain.scheme.ranking import behind_count

UTC_SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
BERLIN = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='Europe/Berlin'}}.{{sha}}")
START = datetime(2025, 10, 14, tzinfo=UTC)


def tag(branch: str, hours: float, sha: str = "185c95c") -> str:
    return UTC_SCHEME.format(branch=branch, sha=sha + "0" * 33, time=START + timedelta(hours=hours))


def test_which_schemes_sort_as_text() -> None:
    assert UTC_SCHEME.sortable
    assert Scheme.compile("{{sha}}-{{branch}}-{{date 'YYYY-MM-DDTHH.mm.ss.SSS'}}").sortable
    assert not BERLIN.sortable  # DST: local text is not time order
    assert not Scheme.compile("{{branch}}.{{date 'YY.M.D'}}.{{sha}}").sortable  # widths vary, YY wraps
    assert not Scheme.compile("{{branch}}.{{date 'DDMMYYYY'}}.{{sha}}").sortable  # not calendar order
    assert not Scheme.compile("{{branch}}.{{date 'X'}}.{{sha}}").sortable
    assert not Scheme.compile("{{branch}}.{{sha}}").sortable


def test_rank_orders_newest_first_and_counts_the_rest() -> None:
    tags = [
        tag("main", 1),
        tag("main", 5),
        tag("feature/x", 9),
        tag("main", 3),
        "latest",
        "sha-abc1234",
        tag("main", 7) + "-dirty",
        "buildcache",
        tag("main.v2", 8),
    ]
    ranking = rank(UTC_SCHEME, tags, "main")
    assert ranking.newest_first == (tag("main", 5), tag("main", 3), tag("main", 1))
    assert ranking.ignored == {"other-scheme": 3, "other-branch": 2, "dirty": 1}
    assert ranking.newest() == tag("main", 5)
    best = ranking.parse(ranking.newest_first[0])
    assert isinstance(best, ParsedTag)
    assert best.time == START + timedelta(hours=5)


def test_equal_times_are_ranked_by_tag_and_left_for_the_policy() -> None:
    tags = [tag("main", 2, "aaaaaaa"), tag("main", 2, "bbbbbbb"), tag("main", 1)]
    assert rank(UTC_SCHEME, tags, "main").newest_first == (tags[1], tags[0], tags[2])


def test_an_impossible_date_ranks_but_does_not_parse() -> None:
    bad = "main.20251399-000000.185c95c"
    ranking = rank(UTC_SCHEME, [bad, tag("main", 1)], "main")
    assert ranking.newest_first[0] == bad
    assert ranking.parse(bad).code == "invalid-time"  # type: ignore[union-attr]


def test_the_exact_path_for_zones_with_dst() -> None:
    tags = [BERLIN.format(branch="main", sha="1" * 40, time=START + timedelta(hours=h)) for h in (1, 30, 2)]
    ranking = rank(BERLIN, [*tags, "latest"], "main")
    assert ranking.newest_first == (tags[1], tags[2], tags[0])
    assert ranking.ignored == {"other-scheme": 1}


hours = st.floats(min_value=0, max_value=24 * 365 * 5, allow_nan=False)
branch_names = st.sampled_from(["main", "feature/x", "main.v2", "dependabot/pip/x-1.2"])


@given(
    st.lists(st.tuples(branch_names, hours, st.booleans()), max_size=60),
    st.lists(st.sampled_from(["latest", "v1.2.3", "sha-abc1234", "buildcache", "main"]), max_size=5),
)
def test_fast_and_exact_paths_agree(builds: list[tuple[str, float, bool]], others: list[str]) -> None:
    tags = [tag(b, h) + ("-dirty" if dirty else "") for b, h, dirty in builds] + others
    fast = rank(UTC_SCHEME, tags, "main")
    exact = rank(UTC_SCHEME, [*tags, "not a tag"], "main")  # an invalid tag forces the exact path
    assert fast.newest_first == exact.newest_first
    counted = dict(exact.ignored)
    counted["other-scheme"] -= 1
    assert fast.ignored == {k: v for k, v in counted.items() if v}


@given(st.lists(st.tuples(branch_names, hours, st.booleans()), max_size=60), st.booleans())
def test_candidates_are_the_readable_tags_newest_first(
    builds: list[tuple[str, float, bool]], impossible: bool
) -> None:
    """What the policy once built by reading every tag and sorting: the same list, read lazily."""
    tags = [tag(b, h) + ("-dirty" if dirty else "") for b, h, dirty in builds]
    if impossible:
        tags.append("main.20251399-000000.185c95c")  # ranks, but does not parse
    fast, exact = rank(UTC_SCHEME, tags, "main"), rank(UTC_SCHEME, [*tags, "not a tag"], "main")
    for ranking in (fast, exact):
        read = [p for t in ranking.newest_first if isinstance(p := ranking.parse(t), ParsedTag)]
        read.sort(key=lambda p: (max(p.instants), p.tag), reverse=True)
        rejected: Counter[str] = Counter()
        assert list(Candidates(ranking, rejected)) == read
        # the fast path meets the impossible date among the ranked tags; the exact path set it aside before
        assert rejected == (Counter({"invalid-time": 1}) if impossible and ranking is fast else Counter())


def test_candidates_read_only_what_is_looked_at(monkeypatch: pytest.MonkeyPatch) -> None:
    tags = [tag("main", h) for h in range(5000)]
    ranking = rank(UTC_SCHEME, tags, "main")
    reads = Counter[str]()
    real = Ranking._read
    monkeypatch.setattr(Ranking, "_read", lambda self, t: reads.update([t]) or real(self, t))
    candidates = Candidates(ranking, Counter())
    newest = next(iter(candidates))
    assert newest.tag == tag("main", 4999)
    assert sum(reads.values()) == 1
    running = ranking.parse(tag("main", 4990))
    assert isinstance(running, ParsedTag)
    assert behind_count(candidates, running) == 9
    assert sum(reads.values()) == 2  # the running build: the nine newer ones are counted by their time text
    assert max(reads.values()) == 1


def test_behind_counted_by_time_text_agrees_with_reading_every_tag() -> None:
    """Issue 25: a far-behind app's newer builds are counted without reading them, as reading them counts."""
    tags = [tag("main", h) for h in range(0, 300, 3)] + [tag("feature/x", h) for h in range(1, 300, 7)]
    fast, exact = rank(UTC_SCHEME, tags, "main"), rank(UTC_SCHEME, [*tags, "not a tag"], "main")
    for hours in (0, 3, 150, 297, 298):
        running = UTC_SCHEME.parse(tag("feature/x" if hours == 298 else "main", hours))
        assert isinstance(running, ParsedTag)
        read = behind_count(list(Candidates(exact, Counter())), running)
        assert behind_count(Candidates(fast, Counter()), running) == read
