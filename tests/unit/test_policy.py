"""The deploy policy, table-driven: every guard of DESIGN's invariants, with its reason code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tagtrail.domain.policy import (
    AppPolicy,
    Decision,
    Facts,
    NeedAncestry,
    NeedCreated,
    NeedDigest,
    Reason,
    Running,
    decide,
    eligible_build,
    explicit,
)
from tagtrail.domain.scheme import Ranking, Scheme, rank

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


def digest_of(tag: str) -> str:
    """The digest the (imagined) registry holds for a tag."""
    return "sha256:" + hashlib.sha256(tag.encode()).hexdigest()


Oracle = Callable[[str, str], bool | None]


def settle(
    scheme: Scheme, policy: AppPolicy, running: Running, facts: Facts, ancestry: Oracle | None = None
) -> Decision:
    """Ask the policy, answering each digest and ancestry question it asks as the reconciler would; a
    question it should not need (NeedCreated) fails the test, so tests of ties call `decide` directly."""
    for _ in range(8):
        result = decide("web", scheme, policy, running, facts)
        if isinstance(result, Decision):
            return result
        if isinstance(result, NeedDigest):
            facts = replace(facts, digests={**facts.digests, result.tag: digest_of(result.tag)})
        elif isinstance(result, NeedAncestry):
            assert ancestry is not None, "asked about ancestry without a source repository"
            answers = {pair: ancestry(*pair) for pair in result.pairs}
            facts = replace(facts, ancestry={**(facts.ancestry or {}), **answers})
        else:
            raise TypeError(f"unexpected question {result}")
    raise AssertionError("the policy never decided")


def run(
    tags: list[str],
    running: str | None,
    policy: AppPolicy = MAIN,
    scheme: Scheme = UTC_SCHEME,
    ancestry: Oracle | None = None,
    **facts: object,
) -> Decision:
    """Decide with the files pinning the running tag's digest (as tagtrail writes them)."""
    return settle(
        scheme,
        policy,
        Running(running, digest_of(running) if running else None),
        Facts(
            rank(scheme, tags, policy.branches),
            NOW,
            total_tags=len(tags),
            ancestry={} if ancestry is not None else None,
            **facts,  # type: ignore[arg-type]
        ),
        ancestry,
    )


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
    assert isinstance(decision.reason, Reason)
    if action == "deploy":  # every deploy pins the digest of what it chose
        assert decision.digest == digest_of(target or "")


@pytest.mark.parametrize(
    ("tags", "running", "rebuilt", "reason", "target"),
    [
        ([OLD, MID, REBUILD], MID, {"bbbbbbb"}, "base-image", REBUILD),  # the running commit, rebuilt
        ([OLD, MID, NEW], MID, {"bbbbbbb", "ccccccc"}, "base-image", NEW),  # a later commit, same code
        (
            [OLD, MID, NEW],
            MID,
            {"bbbbbbb"},
            "newer-build",
            NEW,
        ),  # new code is new code, whatever the base did
        ([OLD, MID, REBUILD], MID, set(), "rebuild", REBUILD),  # no base moved: a rebuild for another cause
        ([OLD, MID], MID, {"bbbbbbb"}, "up-to-date", MID),  # nothing rebuilt yet: nothing to deploy
    ],
)
def test_a_rebuild_on_a_moved_base_says_so(
    tags: list[str], running: str, rebuilt: set[str], reason: str, target: str
) -> None:
    decision = run(tags, running, base_rebuilt=frozenset(rebuilt))
    assert (decision.reason, decision.target_tag) == (reason, target)
    if reason == "base-image":
        assert "moved base image" in decision.sentence
        assert decision.digest == digest_of(target)


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


def test_ancestry_is_asked_once_for_every_newer_candidate() -> None:
    asked: list[tuple[str, str]] = []

    def oracle(candidate: str, running: str) -> bool | None:
        asked.append((candidate, running))
        return candidate.startswith("ccccccc")

    newest = tag("main", 1, "9999999")
    decision = run([OLD, MID, NEW, newest], MID, ancestry=oracle)
    assert decision.target_tag == newest
    first = decide(
        "web",
        UTC_SCHEME,
        MAIN,
        Running(MID, digest_of(MID)),
        Facts(rank(UTC_SCHEME, [OLD, MID, NEW, newest], ("main",)), NOW, ancestry={}),
    )
    assert isinstance(first, NeedAncestry)
    assert {c for c, _ in first.pairs} == {"9999999", "ccccccc"}  # one round for both


def test_no_source_repository_means_no_ancestry_question() -> None:
    decision = run([OLD, MID, NEW], MID)  # ancestry=None in Facts: the guard is skipped
    assert decision.target_tag == NEW


def test_pins_hold() -> None:
    pinned = AppPolicy(("main",), pin=MID)
    held = run([OLD, MID, NEW], MID, pinned)
    assert (held.action, held.reason, held.target_tag) == ("hold", "pinned", MID)
    moved = run([OLD, MID, NEW], NEW, pinned)
    assert (moved.action, moved.reason, moved.target_tag, moved.digest) == (
        "deploy",
        "pinned",
        MID,
        digest_of(MID),
    )


def test_a_pin_outside_the_scheme_is_a_tag_not_a_fake_build() -> None:
    held = run([OLD, MID], "latest", AppPolicy(("main",), pin="latest"))
    assert (held.action, held.target_tag, held.target) == ("hold", "latest", None)


def test_the_digest_is_pinned_where_the_files_do_not_say_it() -> None:
    facts = Facts(rank(UTC_SCHEME, [OLD, NEW], ("main",)), NOW)
    decision = settle(UTC_SCHEME, MAIN, Running(NEW, None), facts)
    assert (decision.action, decision.reason, decision.digest) == ("deploy", "pin-digest", digest_of(NEW))
    same = settle(UTC_SCHEME, MAIN, Running(NEW, digest_of(NEW)), facts)
    assert (same.action, same.reason) == ("nothing", "up-to-date")


def test_deciding_again_after_a_concurrent_deploy_never_moves_backwards() -> None:
    """A rejected push means someone else wrote meanwhile: deciding again on their files keeps theirs."""
    first = run([OLD, MID, NEW], OLD)
    assert first.target_tag == NEW
    newer = tag("main", 1, "9999999")  # someone deployed a newer build meanwhile
    again = run([OLD, MID, NEW], newer)
    assert again.action == "nothing"
    assert again.ignored["older-than-running"] == 3


def test_deciding_again_after_a_concurrent_rollback_keeps_the_rollback() -> None:
    again = run([OLD, MID, NEW], OLD, AppPolicy(("main",), pin=OLD))  # a rollback + pin landed meanwhile
    assert (again.action, again.reason, again.target_tag) == ("hold", "pinned", OLD)


def test_an_explicit_rollback_needs_its_digest_and_is_nothing_when_already_there() -> None:
    asked = explicit("web", UTC_SCHEME, Reason.ROLLBACK, OLD, Running(NEW, digest_of(NEW)), None)
    assert asked == NeedDigest(OLD)
    rolled = explicit("web", UTC_SCHEME, Reason.ROLLBACK, OLD, Running(NEW, digest_of(NEW)), digest_of(OLD))
    assert isinstance(rolled, Decision)
    assert (rolled.action, rolled.reason, rolled.target_tag) == ("deploy", "rollback", OLD)
    there = explicit("web", UTC_SCHEME, Reason.ROLLBACK, OLD, Running(OLD, digest_of(OLD)), digest_of(OLD))
    assert isinstance(there, Decision)
    assert there.action == "nothing"


@pytest.mark.parametrize(
    ("tag_", "branches", "eligible"),
    [
        (NEW, ("main",), True),
        (FEATURE, ("main",), False),
        (FEATURE, ("main", "feature/x"), True),
        (DIRTY, ("main",), False),
        ("latest", ("main",), False),
        (None, ("main",), False),
    ],
)
def test_eligible_build(tag_: str | None, branches: tuple[str, ...], eligible: bool) -> None:
    assert (eligible_build(UTC_SCHEME, branches, tag_) is not None) is eligible


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
    decision = settle(UTC_SCHEME, policy, Running(OLD, None), Facts(facts.ranking, NOW, created))
    assert decision.target_tag == twin_a  # created later
    # Without a tie, no created time is ever asked for (settle fails on any NeedCreated).
    settle(UTC_SCHEME, policy, Running(OLD, None), Facts(rank(UTC_SCHEME, [OLD, NEW], ("main",)), NOW))


def test_a_dst_overlap_needs_created_and_never_goes_backwards() -> None:
    # 01:30 in Los Angeles happened twice on 2024-11-03: the tags alone cannot order these builds.
    first = LA.format(branch="main", sha="1" * 40, time=datetime(2024, 11, 3, 8, 30, tzinfo=UTC))
    second = LA.format(branch="main", sha="2" * 40, time=datetime(2024, 11, 3, 9, 30, tzinfo=UTC))
    later = datetime(2024, 11, 4, tzinfo=UTC)
    facts = Facts(rank(LA, [first, second], ("main",)), later)
    running = Running(second, digest_of(second))
    asked = decide("web", LA, MAIN, running, facts)
    assert isinstance(asked, NeedCreated)
    created = {
        first: datetime(2024, 11, 3, 8, 31, tzinfo=UTC),
        second: datetime(2024, 11, 3, 9, 31, tzinfo=UTC),
    }
    decision = settle(LA, MAIN, running, Facts(facts.ranking, later, created))
    assert (decision.action, decision.target_tag) == ("nothing", second)  # first is older: not deployed


@pytest.mark.parametrize("running_hours_ago", [30.0, None])
def test_the_policy_reads_few_of_thousands_of_tags(
    monkeypatch: pytest.MonkeyPatch, running_hours_ago: float | None
) -> None:
    """Issue 15: the decision reads the tags down to what runs (or, running unknown, the newest), not the
    5,000 older builds below it, whatever guards ask along the way."""
    old = [tag("main", 100 + n / 10, f"{n:07x}") for n in range(5000)]
    newer = [tag("main", h, f"f{n:06x}") for n, h in enumerate((3, 5, 8, 30))]
    running = tag("main", running_hours_ago, "f000003") if running_hours_ago else None
    reads: list[str] = []
    real = Ranking._read
    monkeypatch.setattr(Ranking, "_read", lambda self, t: reads.append(t) or real(self, t))
    decision = run([*old, *newer], running, ancestry=lambda a, b: False)
    assert (decision.action, decision.target_tag) == ("deploy", newer[0])
    if running is not None:
        assert decision.behind == 3
    assert len(reads) <= 6
