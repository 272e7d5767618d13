"""Ranking tags of one branch: the fast path (time text sorts as time) agrees with the exact path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tagtrail.scheme import ParsedTag, Scheme, rank

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
