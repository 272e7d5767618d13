"""Delivery insights on a hand-built history: a real git repository (the monorepo is both the source of the
builds and the deploy repository) with deploys by tagtrail and by hand, a merged branch, a squash of two
deploys, a rebased deploy commit, rollbacks (one automatic) and a pin. Every expected figure is worked out
by hand below, from the timeline in hours after T0 (`bench.deployhistory.timeline`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.cli import run
from bench.deployhistory import CONFIG, CONFIG_TEXT, NOW, SCHEME, T0, Monorepo, h, timeline
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import (
    DecisionLog,
    DecisionRecord,
    HistoryEntry,
    default_log_path,
    deploy_history,
)
from tagtrail.adapters.refs import Matcher
from tagtrail.features.insights import (
    Built,
    built_commits,
    classify,
    compute,
    measure,
    median,
    percentile,
    read_history,
)
from tagtrail.serve.metrics import Metrics


@pytest.fixture
def history(tmp_path: Path) -> tuple[Monorepo, dict[str, str]]:
    return timeline(tmp_path / "mono")


def _insights(repo: Monorepo, automatic: set[str], app: str | None = None):  # type: ignore[no-untyped-def]
    git = GitRepo(repo.root)
    reading = read_history(git, ["deploy.yaml"], Matcher.from_config(CONFIG))
    built = built_commits(git, reading.entries, SCHEME)
    return reading, compute(
        reading, SCHEME, built, since=timedelta(days=30), now=NOW, automatic=automatic, app=app
    )


def test_the_hand_worked_figures(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, commits = history
    reading, insights = _insights(repo, {commits["E9"]})
    # E1, E6, E7 (hand edits and the merge) and E8 (the squash) are read from the files; the rest from trailers
    assert (reading.commits, reading.diffed, reading.from_trailers) == (11, 4, 7)
    kinds = [(e.commit, e.kind) for e in insights.events]
    assert kinds == [
        (commits[name], kind)
        for name, kind in [
            ("E1", "deploy"), ("E2", "deploy"), ("E3", "deploy"), ("E4", "restore"), ("E5", "deploy"),
            ("E6", "restore"), ("E7", "deploy"), ("E8", "deploy"), ("E9", "restore"), ("E10", "restore"),
            ("E11", "deploy"),
        ]
    ]  # fmt: skip
    overall = insights.overall
    # the window starts at the first change (2 h) and ends at now (240 h): 238 h
    assert insights.days == pytest.approx(238 / 24)
    assert overall.deploys == 7
    assert overall.per_day == pytest.approx(7 / (238 / 24))
    # leads 2, 3, 4, 6, 10, 10, 80: the median is the 4th, p90 the 7th (ceil(0.9 × 7) = 7)
    assert (overall.lead_median, overall.lead_p90, overall.lead_samples) == (h(6), h(80), 7)
    # E3, E5 and E8 failed of 7; restores E4, E6, E9 (automatic), E10
    assert (overall.failures, overall.failure_rate) == (3, pytest.approx(3 / 7))
    assert (overall.restores, overall.automatic_restores) == (4, 1)
    # time to restore 6, 10, 5: median 6, p90 the 3rd of 3
    assert (overall.restore_median, overall.restore_p90) == (h(6), h(10))
    assert (overall.security, overall.security_share) == (1, pytest.approx(1 / 7))  # E5, a dependabot commit
    # web runs s4 (committed at 70 h), api a1 (5 h): overall, the oldest
    assert overall.age == h(235)

    web, api = insights.app("web"), insights.app("api")
    assert web is not None
    assert api is not None
    assert (web.deploys, web.failures, web.restores, web.automatic_restores) == (5, 2, 3, 0)
    assert (web.lead_median, web.lead_p90) == (h(6), h(80))  # 2, 4, 6, 10, 80
    assert (web.age, web.security) == (h(170), 1)
    assert (api.deploys, api.failures, api.restores, api.automatic_restores) == (2, 1, 1, 1)
    assert api.lead_median == h(6.5)  # 3 and 10: the mean of the two middle ones
    assert api.restore_median == h(5)
    assert api.age == h(235)


def test_without_the_decision_log_the_rollback_is_a_persons(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, _ = history
    _, insights = _insights(repo, set())
    assert (insights.overall.restores, insights.overall.automatic_restores, insights.overall.failures) == (
        4,
        0,
        3,
    )


def test_a_shorter_window_and_one_app(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, commits = history
    git = GitRepo(repo.root)
    reading = read_history(git, ["deploy.yaml"], Matcher.from_config(CONFIG))
    built = built_commits(git, reading.entries, SCHEME)
    # the last 5 days (from 120 h): E10 (restore) and E11 (deploy, lead 80)
    insights = compute(reading, SCHEME, built, since=timedelta(days=5), now=NOW, app="web")
    assert [e.commit for e in insights.events] == [commits["E10"], commits["E11"]]
    assert (insights.overall.deploys, insights.overall.restores, insights.overall.failures) == (1, 1, 0)
    assert insights.overall.per_day == pytest.approx(1 / 5)
    assert [m.app for m in insights.apps] == ["web"]


def test_the_fast_reader_agrees_with_the_deploy_history(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, commits = history
    git = GitRepo(repo.root)
    matcher = Matcher.from_config(CONFIG)
    fast = read_history(git, ["deploy.yaml"], matcher).entries
    slow = deploy_history(git, ["deploy.yaml"], matcher)

    def key(e: HistoryEntry) -> tuple[str, str, str | None, str | None, str | None]:
        return e.commit, e.app, e.before, e.after, e.tag

    assert [key(e) for e in fast] == [key(e) for e in slow]
    rebased = next(e for e in fast if e.commit == commits["E11"])
    assert rebased.time == T0 + h(150)  # the commit date: when it reached the branch, not when it was written


def test_commits_are_read_in_one_batch(tmp_path: Path) -> None:
    repo = Monorepo(tmp_path / "mono")
    sha = repo.source("s1 — déjà vu", "web", 3)
    git = GitRepo(repo.root)
    found = git.commits([sha, sha[:9], "0" * 40, "nope"])
    assert set(found) == {sha, sha[:9]}
    assert found[sha[:9]].sha == sha
    assert found[sha].time == T0 + h(3)
    assert "déjà vu" in found[sha].message
    assert git.commits([]) == {}


def test_median_and_p90_by_hand() -> None:
    assert median([]) is None
    assert median([h(3), h(1), h(2)]) == h(2)
    assert median([h(4), h(1), h(2), h(3)]) == h(2.5)
    values = [h(n) for n in range(1, 11)]  # 1..10: ceil(0.9 × 10) = 9th
    assert percentile(values, 0.9) == h(9)
    assert percentile([h(5)], 0.9) == h(5)


def _entry(commit: str, hours: float, tag: str, reason: str | None = "newer-build") -> HistoryEntry:
    before = None
    return HistoryEntry(
        commit, T0 + h(hours), "a", "web", before, f"r/web:{tag}", tag, None, reason is not None, reason
    )


def test_running_times_and_the_tag_time_when_the_commit_is_unknown() -> None:
    sha = "a" * 40
    tag = SCHEME.format(branch="main", sha=sha, time=T0 + h(1))
    other = SCHEME.format(branch="dependabot-pip-x", sha="b" * 40, time=T0 + h(2))
    entries = [_entry("d2", 5, other), _entry("d1", 3, tag)]  # newest first
    events = classify(entries, SCHEME, {}, running={("web", tag): T0 + h(4)})
    first, second = events
    # no source commit known: the lead starts at the build time in the tag (1 h), to the deploy (3 h)
    assert (first.lead, first.lead_from, first.lead_running) == (h(2), "build", h(3))
    assert second.security  # built from a dependabot branch
    known = classify(entries, SCHEME, {sha[:7]: Built(T0)})
    assert (known[0].lead, known[0].lead_from) == (h(3), "commit")


def test_a_pin_to_a_newer_build_is_a_deploy_and_a_removed_app_is_neither() -> None:
    old = SCHEME.format(branch="main", sha="a" * 40, time=T0)
    new = SCHEME.format(branch="main", sha="b" * 40, time=T0 + h(1))
    pin = HistoryEntry("p", T0 + h(3), "a", "web", f"r/web:{old}", f"r/web:{new}", new, None, True, "pin")
    gone = HistoryEntry("g", T0 + h(4), "a", "web", f"r/web:{new}", None, None, None, False)
    events = classify([gone, pin, _entry("d", 2, old)], SCHEME, {})
    assert [(e.commit, e.kind) for e in events] == [("d", "deploy"), ("p", "deploy")]
    # the controller deploying a pin to an older build that someone wrote into tagtrail.yaml: a restore
    back = HistoryEntry("b", T0 + h(5), "a", "web", f"r/web:{new}", f"r/web:{old}", old, None, True, "pinned")
    events = classify([back, pin, _entry("d", 2, old)], SCHEME, {})
    assert [(e.commit, e.kind, e.failed) for e in events] == [
        ("d", "deploy", False),
        ("p", "deploy", True),
        ("b", "restore", False),
    ]


def test_an_apps_first_reference_that_is_no_build_starts_its_history() -> None:
    """A bootstrap (`web:bootstrap`, not a build of the scheme, the first reference of the app) is where the
    history starts, not a deploy: the window starts there, but nothing counts or draws it (issue 24, 11)."""
    build = SCHEME.format(branch="main", sha="a" * 40, time=T0 + h(1))
    boot = HistoryEntry("b", T0, "a", "web", None, "r/web:bootstrap", "bootstrap", None, False)
    first = HistoryEntry("d", T0 + h(2), "a", "web", "r/web:bootstrap", f"r/web:{build}", build, None, True)
    events = classify([first, boot], SCHEME, {})
    assert [(e.commit, e.kind) for e in events] == [("b", "start"), ("d", "deploy")]
    insights = measure(events, start=T0 - timedelta(days=60), end=T0 + h(48))
    assert insights.start == T0
    assert insights.overall.deploys == 1
    assert [e.commit for e in insights.events] == ["d"]


def test_the_report_command(
    history: tuple[Monorepo, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, commits = history
    config = repo.root / "tagtrail.yaml"
    config.write_text(CONFIG_TEXT)
    # the decision log says E9 was the controller's own rollback
    DecisionLog(default_log_path()).record(
        DecisionRecord(
            "api",
            "deploy",
            "rollback",
            "rolled back",
            None,
            None,
            "tagtrail serve",
            commit=commits["E9"],
            automatic=True,
        )
    )
    # the timeline ended long ago: a window of ten years holds all of it, whatever today is
    code, out, err = run(capsys, "-c", str(config), "report", "--since", "3650d", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    overall = data["overall"]
    assert (overall["deploys"], overall["failures"], overall["restores"], overall["automatic_restores"]) == (
        7,
        3,
        4,
        1,
    )
    assert overall["lead_time_seconds"] == {"median": 6 * 3600, "p90": 80 * 3600}
    assert overall["time_to_restore_seconds"] == {"median": 6 * 3600, "p90": 10 * 3600}
    assert overall["change_failure_rate"] == pytest.approx(3 / 7)
    assert [a["app"] for a in data["apps"]] == ["api", "web"]
    assert data["read"] == {"commits": 11, "from_trailers": 7, "diffed": 4}
    assert set(data["definitions"]) >= {"frequency", "lead_time", "failure_rate", "restore"}

    code, out, _ = run(capsys, "-c", str(config), "report", "--since", "3650d", "--app", "web")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == [
        "APP",
        "DEPLOYS",
        "PER",
        "DAY",
        "PER",
        "WEEK",
        "LEAD",
        "MEDIAN",
        "LEAD",
        "P90",
        "FAILURE",
        "RATE",
        "RESTORES",
        "RESTORE",
        "MEDIAN",
        "AGE",
        "SECURITY-ONLY",
    ]
    assert lines[2].split()[:7] == [
        "web",
        "5",
        lines[2].split()[2],
        lines[2].split()[3],
        "6.0h",
        "3.3d",
        "40%",
    ]
    assert "Change failure rate:" in out

    code, _, err = run(capsys, "-c", str(config), "report", "--app", "nope", "--since", "3650d")
    assert code == 1
    assert "no change of app 'nope'" in err
    code, _, err = run(capsys, "-c", str(config), "report", "--since", "soon")
    assert code == 2


@dataclass
class _Parsed:
    time: datetime | None


@dataclass
class _Decision:
    reason: str
    target: _Parsed | None


@dataclass
class _Planned:
    app: str
    decision: _Decision


@dataclass
class _Report:
    changed: list[str]
    planned: list[_Planned]


def test_metrics_count_rollbacks_and_observe_lead_times() -> None:
    metrics = Metrics()
    now = T0 + h(10)
    report = _Report(
        ["web", "api", "db"],
        [
            _Planned("web", _Decision("newer-build", _Parsed(T0 + h(8)))),  # lead 2 h
            _Planned("api", _Decision("rollback", _Parsed(T0))),
            _Planned("db", _Decision("auto-rollback", None)),
            _Planned("idle", _Decision("newer-build", _Parsed(T0))),  # planned, not deployed
        ],
    )
    metrics.observe_deploys(report, now=now)
    text = metrics.render().decode()
    assert "tagtrail_lead_time_seconds_count 1.0" in text
    assert "tagtrail_lead_time_seconds_sum 7200.0" in text
    assert 'tagtrail_lead_time_seconds_bucket{le="14400.0"} 1.0' in text
    assert 'tagtrail_lead_time_seconds_bucket{le="3600.0"} 0.0' in text
    assert 'tagtrail_rollbacks_total{app="api"} 1.0' in text
    assert 'tagtrail_rollbacks_total{app="db"} 1.0' in text
    assert 'tagtrail_automatic_rollbacks_total{app="db"} 1.0' in text
    assert 'tagtrail_automatic_rollbacks_total{app="api"}' not in text


def test_with_applied_by_the_lead_time_ends_when_the_deploy_commit_was_applied() -> None:
    """deploy.git.applied_by (issue 30): a deploy counts from its build to the operator applying it, not
    to the commit being pushed; a commit the operator never applied has no lead time."""
    sha = "a" * 40
    tag = SCHEME.format(branch="main", sha=sha, time=T0 + h(1))
    later = SCHEME.format(branch="main", sha="b" * 40, time=T0 + h(2))
    entries = [_entry("d2", 5, later), _entry("d1", 3, tag)]  # newest first
    pushed = classify(entries, SCHEME, {})
    assert [e.lead for e in pushed] == [h(2), h(3)]
    applied = classify(entries, SCHEME, {}, applied={"d1": T0 + h(4)})
    assert [e.lead for e in applied] == [h(3), None]
