"""The tag scheme, table-driven: formatting as metadata-action does, parsing where naive parsers go wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tagtrail.domain.scheme import ParsedTag, Rejected, Scheme
from tagtrail.errors import SchemeError

SEED = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
LOS_ANGELES = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}"
SHA = "185c95c0d0a39b4d6a1ef2b2b0f3a0f4e9f1c2d3"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


@pytest.mark.parametrize(
    ("tag", "branch", "sha", "time"),
    [
        ("main.20251014-051038.185c95c", "main", "185c95c", utc(2025, 10, 14, 5, 10, 38)),
        ("feature.v2.20240218-101500.abc1234", "feature.v2", "abc1234", utc(2024, 2, 18, 10, 15)),
        ("20240218.20240218-101500.abc1234", "20240218", "abc1234", utc(2024, 2, 18, 10, 15)),
        ("123.20240218-101500.abc1234", "123", "abc1234", utc(2024, 2, 18, 10, 15)),
        (
            "dependabot-pip-apps-web-httpx-0.28.1.20251014-051038.185c95c",
            "dependabot-pip-apps-web-httpx-0.28.1",
            "185c95c",
            utc(2025, 10, 14, 5, 10, 38),
        ),
        (
            "main.20240218-101500.abc1234.20240219-000000.def5678",
            "main.20240218-101500.abc1234",
            "def5678",
            utc(2024, 2, 19),
        ),
        ("feature-login.20240229-235959.0000000", "feature-login", "0000000", utc(2024, 2, 29, 23, 59, 59)),
    ],
)
def test_parse_reads_branch_sha_and_time(tag: str, branch: str, sha: str, time: datetime) -> None:
    parsed = Scheme.compile(SEED).parse(tag)
    assert parsed == ParsedTag(tag, branch, sha, (time,))
    assert parsed.time == time


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("latest", "other-scheme"),
        ("sha-abc1234", "other-scheme"),
        ("v1.2.3", "other-scheme"),
        ("buildcache", "other-scheme"),
        ("main", "other-scheme"),
        ("main.20240218-101500.ABC1234", "other-scheme"),  # git writes shas in lowercase
        ("main.20240218-101500.abc123", "other-scheme"),  # one hex digit short
        ("main.20240218-1015.abc1234", "other-scheme"),
        (".20240218-101500.abc1234", "other-scheme"),  # no branch: not even a valid tag
        ("main.20240230-101500.abc1234", "invalid-time"),  # 30 February
        ("main.20240218-246000.abc1234", "invalid-time"),
        ("main.20240218-101500.abc1234-dirty", "dirty"),
        ("x" * 129, "other-scheme"),
        ("", "other-scheme"),
        ("tag with spaces", "other-scheme"),
    ],
)
def test_parse_rejects_other_tags_with_a_reason(tag: str, code: str) -> None:
    result = Scheme.compile(SEED).parse(tag)
    assert isinstance(result, Rejected)
    assert result.code == code
    assert result.reason


def test_rejection_of_another_scheme_shows_what_tags_look_like() -> None:
    result = Scheme.compile(SEED).parse("latest")
    assert isinstance(result, Rejected)
    assert "main.20251014-051038.185c95c" in result.reason


@pytest.mark.parametrize(
    ("template", "branch", "time", "expected"),
    [
        (SEED, "main", utc(2025, 10, 14, 5, 10, 38), "main.20251014-051038.185c95c"),
        (SEED, "refs/heads/main", utc(2025, 10, 14, 5, 10, 38), "main.20251014-051038.185c95c"),
        (SEED, "feature/login", utc(2024, 2, 18, 10, 15), "feature-login.20240218-101500.185c95c"),
        (SEED, "feat//x", utc(2024, 2, 18, 10, 15), "feat-x.20240218-101500.185c95c"),  # one run, one '-'
        (SEED, "feat/@x", utc(2024, 2, 18, 10, 15), "feat-x.20240218-101500.185c95c"),
        # Handlebars HTML-escapes {{…}} output before metadata-action sanitises it.
        (SEED, "a&b", utc(2024, 2, 18, 10, 15), "a-amp-b.20240218-101500.185c95c"),
        (SEED, "it's", utc(2024, 2, 18, 10, 15), "it-x27-s.20240218-101500.185c95c"),
        (SEED, "k=v", utc(2024, 2, 18, 10, 15), "k-x3D-v.20240218-101500.185c95c"),
        (
            "{{{branch}}}.{{date 'YYYYMMDD-HHmmss'}}.{{sha}}",
            "a&b",
            utc(2024, 2, 18, 10, 15),
            "a-b.20240218-101500.185c95c",
        ),
        (LOS_ANGELES, "main", utc(2024, 2, 18, 18, 15), "main.20240218-101500.185c95c"),
        (LOS_ANGELES, "main", utc(2024, 7, 1, 17, 0), "main.20240701-100000.185c95c"),
        (
            "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='asia/tokyo'}}.{{sha}}",
            "main",
            utc(2020, 1, 10, 0, 30),
            "main.20200110-093000.185c95c",
        ),
        ("{{sha}}_{{branch}}_{{date 'X'}}", "main", utc(2024, 2, 18, 10, 15), "185c95c_main_1708251300"),
        (
            "v{{date 'YY.M.D-H.m.s.SSS'}}-{{branch}}-{{sha}}",
            "main",
            datetime(2024, 2, 8, 9, 5, 7, 120000, UTC),
            "v24.2.8-9.5.7.120-main-185c95c",
        ),
    ],
)
def test_format_gives_the_tag_metadata_action_gives(
    template: str, branch: str, time: datetime, expected: str
) -> None:
    scheme = Scheme.compile(template)
    tag = scheme.format(branch=branch, sha=SHA, time=time)
    assert tag == expected
    parsed = scheme.parse(tag)
    assert isinstance(parsed, ParsedTag)
    assert parsed.sha == SHA[:7]


def test_sha_length_is_configurable() -> None:
    scheme = Scheme.compile(SEED, sha_length=12)
    tag = scheme.format(branch="main", sha=SHA, time=utc(2024, 2, 18))
    assert tag.endswith(".185c95c0d0a3")
    parsed = scheme.parse(tag)
    assert isinstance(parsed, ParsedTag)
    assert parsed.sha == SHA[:12]
    assert isinstance(scheme.parse("main.20240218-000000.185c95c"), Rejected)


def test_an_overlong_tag_is_shortened_in_the_branch_and_still_parses() -> None:
    scheme = Scheme.compile(SEED)
    branch = "feature/" + "very-long-name-" * 12
    tag = scheme.format(branch=branch, sha=SHA, time=utc(2024, 2, 18))
    assert len(tag) == 128
    assert tag.endswith(".20240218-000000.185c95c")
    parsed = scheme.parse(tag)
    assert isinstance(parsed, ParsedTag)
    assert scheme.branch_token(branch).startswith(parsed.branch)


def test_a_local_time_in_a_dst_overlap_is_ambiguous_with_both_instants() -> None:
    scheme = Scheme.compile(LOS_ANGELES)
    first = scheme.format(branch="main", sha=SHA, time=utc(2024, 11, 3, 8, 30))  # 01:30 PDT
    second = scheme.format(branch="main", sha=SHA, time=utc(2024, 11, 3, 9, 30))  # 01:30 PST
    assert first == second == "main.20241103-013000.185c95c"
    parsed = scheme.parse(first)
    assert isinstance(parsed, ParsedTag)
    assert parsed.ambiguous
    assert parsed.time is None
    assert parsed.instants == (utc(2024, 11, 3, 8, 30), utc(2024, 11, 3, 9, 30))


def test_a_local_time_in_a_dst_gap_is_invalid() -> None:
    result = Scheme.compile(LOS_ANGELES).parse("main.20240310-023000.185c95c")
    assert isinstance(result, Rejected)
    assert result.code == "nonexistent-time"
    assert "DST gap" in result.reason


def test_a_date_only_format_is_not_refused_for_a_gap_at_midnight() -> None:
    # Santiago springs forward at midnight: a day-resolution tag of that day is still a real build.
    scheme = Scheme.compile("{{branch}}.{{date 'YYYYMMDD' tz='America/Santiago'}}.{{sha}}")
    assert isinstance(scheme.parse("main.20240908.185c95c"), ParsedTag)


def test_fixed_width_fields_need_no_separator() -> None:
    scheme = Scheme.compile("{{branch}}{{date 'YYYYMMDDHHmmss'}}{{sha}}")
    assert scheme.parse("main20240218101500abc1234") == ParsedTag(
        "main20240218101500abc1234", "main", "abc1234", (utc(2024, 2, 18, 10, 15),)
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{branch}}.{{date 'YYYYMMDD' tz='Pacific/Los Angeles'}}.{{sha}}",
            "did you mean 'America/Los_Angeles'",
        ),
        ("{{branch}}.{{date 'YYYYMMDD' tz='Pacific/Los Angeles'}}.{{sha}}", "silently falls back to UTC"),
        ("{{branch}}.{{date 'YYYYMMDD' tz='Europe/Berln'}}.{{sha}}", "did you mean 'Europe/Berlin'"),
        ("{{branch}}.{{date 'YYYYMMDD' tz='Mars/Olympus'}}.{{sha}}", "unknown time zone"),
        ("{{branch}}.{{sha}}.{{tag}}", "{{tag}} is not usable in a tag scheme"),
        ("{{branch}}.{{sha}}.{{foo}}", "unknown expression {{foo}}"),
        ("{{branch}}.{{date}}.{{sha}}", "needs exactly one format"),
        ("{{branch}}.{{date 'YYYY' zone='UTC'}}.{{sha}}", "unknown option 'zone'"),
        ("{{branch}}.{{date 'YYYYMMDD'}}", "has no {{sha}}"),
        ("{{sha}}-{{date 'YYYYMMDD'}}", "has no {{branch}}"),
        ("{{branch}}.{{sha}}.{{sha}}", "appears more than once"),
        ("{{branch}}.{{date 'YYYYMMDD'}}.{{commit_date 'YYYYMMDD'}}.{{sha}}", "more than once"),
        ("{{branch}}.{{date 'HHmmss'}}.{{sha}}", "must contain a year, month and day"),
        ("{{branch}}.{{date 'YYYYMMDD-hhmm'}}.{{sha}}", "12-hour clock"),
        ("{{branch}}.{{date 'YYYYMMDDHHmmZ'}}.{{sha}}", "loses its sign"),
        ("{{branch}}.{{date 'YYYY-Q'}}.{{sha}}", "does not read this token back"),
        ("{{branch}}.{{date 'YYYYMD'}}.{{sha}}", "run together"),
        ("{{branch}}.{{date 'YYYYMMDD-YY'}}.{{sha}}", "'YYYY' and 'YY' both give the year"),
        ("{{branch}}.{{date 'X'}}{{sha}}", "'X' runs into {{sha}}"),
        ("{{branch}}{{date 'X'}}.{{sha}}", "{{branch}} runs into 'X'"),
        ("{{date 'X'}}{{branch}}.{{sha}}", "'X' runs into {{branch}}"),
        ("{{branch}}.{{date 'LT'}}.{{sha}}", "locale formats"),
        ("{{branch}} {{sha", "never closed"),
        ("{{#if branch}}x{{/if}}{{sha}}", "block helpers"),
        ("{{branch}}.{{sha}}.{{date YYYY}}", "unquoted argument"),
        ("{{branch x}}.{{sha}}", "unquoted argument"),
        ("{{branch 'x'}}.{{sha}}", "takes no arguments"),
        ("{{branch}}.{{sha length=12}}", "sha_length in tagtrail.yaml"),
    ],
)
def test_a_bad_template_is_refused_when_compiled(template: str, message: str) -> None:
    with pytest.raises(SchemeError) as caught:
        Scheme.compile(template)
    assert message in str(caught.value)


def test_formatting_refuses_what_no_registry_would_accept() -> None:
    scheme = Scheme.compile(SEED)
    with pytest.raises(SchemeError, match="branch is empty"):
        scheme.format(branch="", sha=SHA, time=utc(2024, 1, 1))
    with pytest.raises(SchemeError, match="not a commit sha"):
        scheme.format(branch="main", sha="xyz", time=utc(2024, 1, 1))
    with pytest.raises(SchemeError, match="no zone"):
        scheme.format(branch="main", sha=SHA, time=datetime(2024, 1, 1))
    with pytest.raises(SchemeError, match="must start with"):
        scheme.format(branch="/x", sha=SHA, time=utc(2024, 1, 1))


def test_commit_date_formats_the_commit_time() -> None:
    scheme = Scheme.compile("{{branch}}.{{commit_date 'YYYYMMDD-HHmmss'}}.{{sha}}")
    assert scheme.time_source == "commit_date"
    tag = scheme.format(branch="main", sha=SHA, time=utc(2025, 1, 1), commit_time=utc(2024, 6, 1, 12))
    assert tag == "main.20240601-120000.185c95c"


def test_branch_token_is_how_a_branch_appears_in_tags() -> None:
    scheme = Scheme.compile(SEED)
    assert scheme.branch_token("feature/login") == "feature-login"
    assert scheme.branch_token("refs/heads/main") == "main"
