"""Fuzz: Scheme.parse reads any string under any of several schemes and returns ParsedTag or Rejected.

Tags come from the registry, i.e. from anyone who can push: a parse that raises, or takes unbounded time
on a crafted tag (a regex that backtracks), would stop every deploy of that app."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from bench.fuzzing import ODD, outcome
from tagtrail.domain.scheme import ParsedTag, Rejected, Scheme
from tagtrail.errors import TagtrailError

TEMPLATES = [
    "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}",
    "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}",
    "{{branch}}-{{date 'YYYY-MM-DDTHH.mm.ss.SSS' tz='Europe/Berlin'}}-{{sha}}",
    "{{sha}}_{{branch}}_{{date 'X'}}",
    "v{{date 'YY.M.D-H.m.s' tz='Australia/Lord_Howe'}}-{{branch}}-{{sha}}",
    "{{branch}}-{{date 'dddd, MMMM Do YYYY, h:mm:ss a' tz='Asia/Tokyo'}}-{{sha}}",
    "{{branch}}.{{commit_date 'x'}}.{{sha}}",
    "{{branch}}.{{sha}}",
]
SCHEMES = [Scheme.compile(t) for t in TEMPLATES] + [Scheme.compile(TEMPLATES[0], sha_length=40)]

# tags made by the schemes themselves, as seeds for near misses
SEEDS = [
    s.format(
        branch=b,
        sha="185c95c0d0a39b4d185c95c0d0a39b4d185c95c0",
        time=datetime(2025, 10, 14, 5, 10, 38, tzinfo=UTC),
    )
    for s in SCHEMES
    for b in ("main", "feature/login", "1234", "a.b-c_d")
]
PIECES = [
    ".",
    "-",
    "_",
    "main",
    "20251014",
    "051038",
    "185c95c",
    "0" * 40,
    "-dirty",
    ":",
    "/",
    "+",
    "a" * 200,
]


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(tag)))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.sampled_from(ODD), st.text(max_size=4)))
        cut = draw(st.integers(0, 3))
        tag = tag[:where] + piece + tag[where + cut :]
    return tag


tags = st.one_of(
    near_misses(),
    st.text(max_size=300),
    st.text(alphabet="0123456789abcdef.-_", max_size=300),  # the alphabet a backtracking regex chokes on
    st.builds(lambda piece, n: piece * n, st.sampled_from(PIECES), st.integers(1, 5000)),
)


@given(st.sampled_from(SCHEMES), tags)
@example(SCHEMES[0], "a" * 100_000)
@example(SCHEMES[0], "." * 50_000 + "!")
@example(SCHEMES[3], "0_" * 20_000)
@example(SCHEMES[5], "a-Monday, " * 10_000)
def test_parse_reads_or_rejects_any_tag(scheme: Scheme, tag: str) -> None:
    parsed = outcome(lambda: scheme.parse(tag), TagtrailError)
    assert isinstance(parsed, ParsedTag | Rejected), parsed
    if isinstance(parsed, Rejected):
        assert parsed.reason
