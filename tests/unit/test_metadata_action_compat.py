"""`tagtrail tag` gives the tag docker/metadata-action gives for the same branch, sha and time.

The expected values come from metadata-action's documented behaviour (its README's global-expression
tables and examples) and from the seed post's template. A tagtrail scheme needs {{branch}} and {{sha}}, so
each documented expression is checked inside such a template; the expected tag is the documented output of
each piece joined as metadata-action joins and sanitises them.
"""

from __future__ import annotations

import json

import pytest

from tagtrail.cli import main

SHA = "90dd6032fac8bda1b6c4436a2e65de27961ed071"  # the README's example short sha is 90dd603


def tag(capsys: pytest.CaptureFixture[str], template: str, branch: str, time: str) -> str:
    code = main(["tag", "--scheme", template, "--branch", branch, "--sha", SHA, "--time", time, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return str(json.loads(out.out)["tag"])


@pytest.mark.parametrize(
    ("template", "branch", "time", "expected"),
    [
        # {{branch}}: refs/heads/master → master; refs/heads/my/branch → my-branch. {{sha}} → 90dd603.
        ("{{branch}}-{{sha}}", "refs/heads/master", "2020-01-10T00:00:00Z", "master-90dd603"),
        ("{{branch}}-{{sha}}", "refs/heads/my/branch", "2020-01-10T00:00:00Z", "my-branch-90dd603"),
        # type=raw,value=mytag-{{branch}}-{{sha}}
        ("mytag-{{branch}}-{{sha}}", "master", "2020-01-10T00:00:00Z", "mytag-master-90dd603"),
        # {{date 'YYYYMMDD'}} → 20200110
        (
            "{{branch}}-{{date 'YYYYMMDD'}}-{{sha}}",
            "master",
            "2020-01-10T15:25:50Z",
            "master-20200110-90dd603",
        ),
        # {{date 'dddd, MMMM Do YYYY, h:mm:ss a'}} → Friday, January 10th 2020, 3:25:50 pm (then sanitised)
        (
            "{{branch}}-{{date 'dddd, MMMM Do YYYY, h:mm:ss a'}}-{{sha}}",
            "master",
            "2020-01-10T15:25:50Z",
            "master-Friday-January-10th-2020-3-25-50-pm-90dd603",
        ),
        # {{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}} → 20200110-093000
        (
            "{{branch}}-{{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}-{{sha}}",
            "master",
            "2020-01-10T00:30:00Z",
            "master-20200110-093000-90dd603",
        ),
        # {{commit_date 'YYYYMMDD'}} with the commit's time
        (
            "{{branch}}-{{commit_date 'YYYYMMDD'}}-{{sha}}",
            "master",
            "2020-01-10T12:00:00Z",
            "master-20200110-90dd603",
        ),
        # The seed post's scheme, with its zone spelt as the IANA database (and moment) spell it.
        (
            "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}",
            "main",
            "2024-02-18T18:15:00Z",
            "main.20240218-101500.90dd603",
        ),
        # The scheme DESIGN.md's users run, in UTC.
        (
            "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}",
            "main",
            "2025-10-14T05:10:38Z",
            "main.20251014-051038.90dd603",
        ),
        (
            "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}",
            "dependabot/pip/apps/web/httpx-0.28.1",
            "2025-10-14T05:10:38Z",
            "dependabot-pip-apps-web-httpx-0.28.1.20251014-051038.90dd603",
        ),
    ],
)
def test_tag_matches_metadata_action(
    capsys: pytest.CaptureFixture[str], template: str, branch: str, time: str, expected: str
) -> None:
    assert tag(capsys, template, branch, time) == expected


def test_the_seed_template_is_refused_with_the_zone_it_meant(capsys: pytest.CaptureFixture[str]) -> None:
    seed = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='Pacific/Los Angeles'}}.{{sha}}"
    code = main(["tag", "--scheme", seed, "--branch", "main", "--sha", SHA, "--time", "2024-02-18T10:15:00Z"])
    err = capsys.readouterr().err
    assert code == 1
    assert "unknown time zone 'Pacific/Los Angeles'" in err
    assert "silently falls back to UTC" in err
    assert "America/Los_Angeles" in err
    assert "Traceback" not in err
