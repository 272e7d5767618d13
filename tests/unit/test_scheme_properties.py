"""Properties of the scheme that must hold for any branch, sha, time and zone (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from tagtrail.domain.scheme import MAX_TAG_LENGTH, ParsedTag, Rejected, Scheme, is_valid_tag
from tagtrail.errors import SchemeError

# (template, whether the branch is read back exactly: false where a literal next to the branch is itself
# sanitised, so a trailing '/' of the branch and that literal merge into one '-')
TEMPLATES = [
    ("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}", True),
    ("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}", True),
    ("{{branch}}-{{date 'YYYY-MM-DDTHH.mm.ss.SSS' tz='Europe/Berlin'}}-{{sha}}", True),
    ("{{sha}}_{{branch}}_{{date 'X'}}", True),
    ("v{{date 'YY.M.D-H.m.s' tz='Australia/Lord_Howe'}}-{{branch}}-{{sha}}", True),
    ("{{branch}}@{{date 'YYYYMMDDHHmmss' tz='Asia/Kathmandu'}}+{{sha}}", False),
    ("{{branch}}-{{date 'dddd, MMMM Do YYYY, h:mm:ss a' tz='Asia/Tokyo'}}-{{sha}}", True),
    ("{{branch}}.{{sha}}", True),
]

# What git allows in a branch name, roughly: printable ASCII but space and ~^:?*[\, starting alphanumeric.
branch_start = st.characters(
    whitelist_categories=(),
    whitelist_characters="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
)
branch_rest = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="~^:?*[\\"), max_size=60
)
branches = st.builds(lambda first, rest: first + rest, branch_start, branch_rest)
shas = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


@given(st.sampled_from(TEMPLATES), branches, shas, times)
def test_format_then_parse_gives_back_the_same_fields(
    template: tuple[str, bool], branch: str, sha: str, time: datetime
) -> None:
    source, exact_branch = template
    if "'YY." in source:
        assume(1969 <= time.year <= 2068)  # a two-digit year reads back in moment's window only
    scheme = Scheme.compile(source)
    try:
        tag = scheme.format(branch=branch, sha=sha, time=time)
    except SchemeError:
        assume(False)
        return
    assert is_valid_tag(tag)
    assert len(tag) <= MAX_TAG_LENGTH
    parsed = scheme.parse(tag)
    assert isinstance(parsed, ParsedTag), parsed
    assert parsed.sha == sha[:7]
    token = scheme.branch_token(branch)
    if len(tag) < MAX_TAG_LENGTH and exact_branch:
        assert parsed.branch == token
    else:
        assert token.startswith(parsed.branch.rstrip("-"))
    if scheme.has_time:
        # Every instant the tag names renders to the same tag, and the true build time is one of them
        # when the format keeps every unit down to the millisecond.
        assert parsed.instants
        for instant in parsed.instants:
            assert scheme.format(branch=parsed.branch, sha=sha, time=instant) == tag
        assert min(parsed.instants) - timedelta(days=1) <= time <= max(parsed.instants) + timedelta(days=1)
        if "SSS" in source:
            assert time in parsed.instants


@given(st.sampled_from(TEMPLATES), st.text(max_size=200))
def test_parse_never_raises_on_any_string(template: tuple[str, bool], text: str) -> None:
    result = Scheme.compile(template[0]).parse(text)
    assert isinstance(result, ParsedTag | Rejected)


@given(st.sampled_from(TEMPLATES), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,140}", fullmatch=True))
def test_parse_never_raises_on_tag_shaped_strings(template: tuple[str, bool], text: str) -> None:
    result = Scheme.compile(template[0]).parse(text)
    if isinstance(result, ParsedTag):
        assert result.tag == text
        assert len(result.instants) <= 2
    else:
        assert result.reason


@given(branches, shas, times, times)
def test_a_later_build_never_parses_as_earlier_in_utc(
    branch: str, sha: str, first: datetime, second: datetime
) -> None:
    scheme = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
    try:
        a = scheme.parse(scheme.format(branch=branch, sha=sha, time=first))
        b = scheme.parse(scheme.format(branch=branch, sha=sha, time=second))
    except SchemeError:
        assume(False)
        return
    assert isinstance(a, ParsedTag)
    assert isinstance(b, ParsedTag)
    assert a.time is not None
    assert b.time is not None
    if first.replace(microsecond=0) < second.replace(microsecond=0):
        assert a.time < b.time
