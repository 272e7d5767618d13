"""The deploy policy, table-driven: every guard of DESIGN's invariants, with its reason code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tagtrail.policy import AppPolicy, Decision, Facts, NeedCreated, Running, decide
from tagtrail.scheme import Scheme, rank

UTC_SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
LA = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}")
NOW = datetime(2025, 10, 14, 12, 0, tzinfo=UTC)
MAIN = AppPolicy(("main",))


def tag(branch: str, hours_ago: float, sha: str, scheme: Scheme = UTC_SCHEME) -> str:
    return scheme.format(
        branch=branch, sha=sha + "0" * (40 - len(sha)), time=NOW - timedelta(hours=hours_ago)
    )


OLD = tag("main", 48, "aaaaaaa")
MID = tag("main", 24, "bbbbbbb")
NEW = tag("main", 2, "ccccccc")
FEATURE = tag("feature/x", 1, "ddddddd")
DIRTY = tag("main", 0.5, "eeeeeee") + "-dirty"
REBUILD = tag("main", 1, "bbbbbbb")  # the MID commit built again, later


def run(
    tags: list[str],
    running: str | None,
    policy: AppPolicy = MAIN,
    scheme: Scheme = UTC_SCHEME,
    **facts: object,
) -> Decision:
    result = decide(
        "web",
        scheme,
        policy,
        Running(running, None),
        Facts(rank(scheme, tags, policy.branches), NOW, total_tags=len(tags), **facts),
    )  # type: ignore[arg-type]
    assert isinstance(result, Decision), result
    return result


@pytest.mark.parametrize(
    ("tags", "running", "action", "reason", "target"),
    [
        ([OLD, MID, NEW], OLD, "deploy", "newer-build", NEW),
        ([OLD, MID, NEW], NEW, "nothing", "up-to-date", NEW),
        ([OLD, MID], NEW, "nothing", "up-to-date", None),  # never older than what runs
        ([OLD, MID, NEW, FEATURE, DIRTY, "latest", "buildcache"], MID, "deploy", "newer-build", NEW),
        ([FEATURE, DIRTY, "latest"], OLD, "hold", "no-eligible-tags", None),
        ([OLD, MID], "latest", "deploy", "running-unknown", MID),  # unknown is not older
        ([OLD, MID], None, "deploy", "running-unknown", MID),
        ([OLD, MID, REBUILD], MID, "deploy", "rebuild", REBUILD),  # same commit, newer image: an upgrade
    ],
)
def test_decisions(tags: list[str], running: str, action: str, reason: str, target: str | None) -> None:
    decision = run(tags, running)
    assert (decision.action, decision.reason, decision.target_tag) == (action, reason, target)
    assert decision.sentence


def test_ignored_candidates_are_counted_by_reason() -> None:
    decision = run([OLD, MID, NEW, FEATURE, DIRTY, "latest", "buildcache", "v1.2.3"], MID)
    assert decision.ignored == {"other-branch": 1, "dirty": 1, "other-scheme": 3}
    assert decision.behind == 1
    assert decision.candidates == 8


def test_older_builds_are_counted_when_nothing_is_newer() -> None:
    decision = run([OLD, MID], NEW)
    assert decision.ignored["older-than-running"] == 2


def test_soak_time_holds_young_builds_and_takes_an_older_eligible_one() -> None:
    policy = AppPolicy(("main",), min_age=timedelta(hours=6))
    assert (run([OLD, MID, NEW], OLD, policy).action, run([OLD, MID, NEW], OLD, policy).target_tag) == (
        "deploy",
        MID,
    )
    held = run([OLD, MID, NEW], MID, policy)
    assert (held.action, held.reason) == ("hold", "too-young")


def test_the_ancestry_guard() -> None:
    # NEW's commit is an ancestor of the running one (it was built late): not an upgrade.
    def ancestry(candidate: str, running: str) -> bool | None:
        return candidate.startswith("ccccccc") and running.startswith("bbbbbbb")

    held = run([OLD, MID, NEW], MID, ancestry=ancestry)
    assert (held.action, held.reason) == ("hold", "ancestor-of-running")
    unknown = run([OLD, MID, NEW], MID, ancestry=lambda c, r: None)
    assert unknown.action == "deploy"  # cannot tell: the time decides


def test_pins_hold() -> None:
    pinned = AppPolicy(("main",), pin=MID)
    held = run([OLD, MID, NEW], MID, pinned)
    assert (held.action, held.reason, held.target_tag) == ("hold", "pinned", MID)
    moved = run([OLD, MID, NEW], NEW, pinned)
    assert (moved.action, moved.reason, moved.target_tag) == ("deploy", "pinned", MID)


def test_cooldown_only_for_automatic_deploys() -> None:
    policy = AppPolicy(("main",), cooldown=timedelta(minutes=10))
    recent = NOW - timedelta(minutes=3)
    held = run([OLD, NEW], OLD, policy, automatic=True, last_automatic=recent)
    assert (held.action, held.reason) == ("hold", "cooldown")
    assert "420 s" in held.sentence
    assert run([OLD, NEW], OLD, policy, automatic=False, last_automatic=recent).action == "deploy"
    assert (
        run([OLD, NEW], OLD, policy, automatic=True, last_automatic=NOW - timedelta(minutes=11)).action
        == "deploy"
    )


def test_several_branches() -> None:
    release = tag("release", 1, "fffffff")
    decision = run([OLD, NEW, release, FEATURE], OLD, AppPolicy(("main", "release")))
    assert decision.target_tag == release
    assert decision.ignored == {"other-branch": 1}


def test_equal_times_are_ordered_by_created_fetched_only_then() -> None:
    twin_a, twin_b = tag("main", 2, "1111111"), tag("main", 2, "2222222")
    policy = MAIN
    facts = Facts(rank(UTC_SCHEME, [OLD, twin_a, twin_b], ("main",)), NOW)
    asked = decide("web", UTC_SCHEME, policy, Running(OLD, None), facts)
    assert asked == NeedCreated((twin_b, twin_a))
    created = {twin_a: NOW - timedelta(minutes=50), twin_b: NOW - timedelta(minutes=90)}
    decision = decide("web", UTC_SCHEME, policy, Running(OLD, None), Facts(facts.ranking, NOW, created))
    assert isinstance(decision, Decision)
    assert decision.target_tag == twin_a  # created later
    # Without a tie, no created time is ever asked for.
    assert isinstance(
        decide(
            "web", UTC_SCHEME, policy, Running(OLD, None), Facts(rank(UTC_SCHEME, [OLD, NEW], ("main",)), NOW)
        ),
        Decision,
    )


def test_a_dst_overlap_needs_created_and_never_goes_backwards() -> None:
    # 01:30 in Los Angeles happened twice on 2024-11-03: the tags alone cannot order these builds.
    first = LA.format(branch="main", sha="1" * 40, time=datetime(2024, 11, 3, 8, 30, tzinfo=UTC))
    second = LA.format(branch="main", sha="2" * 40, time=datetime(2024, 11, 3, 9, 30, tzinfo=UTC))
    later = datetime(2024, 11, 4, tzinfo=UTC)
    facts = Facts(rank(LA, [first, second], ("main",)), later)
    running = Running(second, None)
    asked = decide("web", LA, MAIN, running, facts)
    assert isinstance(asked, NeedCreated)
    created = {
        first: datetime(2024, 11, 3, 8, 31, tzinfo=UTC),
        second: datetime(2024, 11, 3, 9, 31, tzinfo=UTC),
    }
    decision = decide("web", LA, MAIN, running, Facts(facts.ranking, later, created))
    assert isinstance(decision, Decision)
    assert (decision.action, decision.target_tag) == ("nothing", second)  # first is older: not deployed
