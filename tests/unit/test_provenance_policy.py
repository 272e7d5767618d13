"""A tag's claims, checked and not believed (DESIGN invariant 9): the policy's refusals, table-driven, with
every fact it asks for answered as the reconciler would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from tagtrail.domain.policy import (
    AppPolicy,
    Decision,
    Facts,
    NeedAncestry,
    NeedDigest,
    Reason,
    Running,
    decide,
)
from tagtrail.domain.provenance import (
    Claims,
    CommitAnswer,
    CommitState,
    NeedCommit,
    NeedRevision,
    NeedSignature,
    SignatureAnswer,
)
from tagtrail.domain.scheme import Scheme, rank

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
NOW = datetime(2025, 10, 14, 12, 0, tzinfo=UTC)
MAIN = AppPolicy(("main",))


def tag(hours_ago: float, sha: str, branch: str = "main") -> str:
    return SCHEME.format(
        branch=branch, sha=sha + "0" * (40 - len(sha)), time=NOW - timedelta(hours=hours_ago)
    )


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def full(sha: str) -> str:
    return sha + "f" * (40 - len(sha))


OLD = tag(48, "aaaaaaa")
MID = tag(24, "bbbbbbb")
NEW = tag(2, "ccccccc")
FUTURE = tag(-3, "ddddddd")  # three hours ahead of now


@dataclass
class World:
    """What git and the registry would answer."""

    commits: dict[str, CommitState] = field(default_factory=dict)  # short sha → state (default: on main)
    labels: dict[str, str | None] = field(
        default_factory=dict
    )  # tag → revision label (default: the full sha)
    repointed: dict[str, str] = field(default_factory=dict)  # tag → its digest now
    signed: dict[str, SignatureAnswer] | None = None  # tag → answer; None: no keys configured
    asked: list[object] = field(default_factory=list)

    def digest(self, tag: str) -> str:
        return self.repointed.get(tag, digest_of(tag))


def settle(world: World, running: Running, tags: list[str], claims: Claims) -> Decision:
    facts = Facts(rank(SCHEME, tags, ("main",)), NOW, total_tags=len(tags), claims=claims)
    by_digest = {world.digest(t): t for t in tags}
    for _ in range(12):
        result = decide("web", SCHEME, MAIN, running, facts)
        world.asked.append(result)
        if isinstance(result, Decision):
            return result
        c = facts.claims
        if isinstance(result, NeedDigest):
            facts = replace(facts, digests={**facts.digests, result.tag: world.digest(result.tag)})
        elif isinstance(result, NeedCommit):
            found = {
                sha: CommitAnswer(world.commits.get(sha[:7], CommitState.ON_BRANCH), full(sha), "origin/main")
                for sha, _ in result.shas
            }
            facts = replace(facts, claims=replace(c, commits={**(c.commits or {}), **found}))
        elif isinstance(result, NeedRevision):
            digest = result.digest or world.digest(result.tag)
            parsed = SCHEME.parse(result.tag)
            label = world.labels.get(result.tag, full(parsed.sha) if hasattr(parsed, "sha") else None)
            facts = replace(
                facts,
                digests={**facts.digests, result.tag: digest},
                claims=replace(c, revisions={**(c.revisions or {}), digest: label}),
            )
        elif isinstance(result, NeedSignature):
            assert world.signed is not None
            answer = world.signed.get(
                by_digest.get(result.digest, ""), SignatureAnswer(False, "none", signed=False)
            )
            facts = replace(
                facts, claims=replace(c, signatures={**(c.signatures or {}), result.digest: answer})
            )
        else:
            assert not isinstance(result, NeedAncestry)
            raise TypeError(result)
    raise AssertionError("never decided")


def claims(
    world: World, *, source: bool = True, recorded: dict[str, str] | None = None, recheck: bool = False
) -> Claims:
    return Claims(
        commits={} if source else None,
        revisions={},
        signatures={} if world.signed is not None else None,
        recorded=recorded or {},
        recheck_running=recheck,
    )


GOOD_SIGNATURE = SignatureAnswer(True, "signed")
BAD_SIGNATURE = SignatureAnswer(False, "no valid signature (wrong key)")


@pytest.mark.parametrize(
    ("world", "action", "reason", "target", "ignored"),
    [
        (World(), "deploy", "newer-build", NEW, {}),
        (
            World(commits={"ccccccc": CommitState.MISSING}),
            "deploy",
            "newer-build",
            MID,
            {"commit-unknown": 1},
        ),
        (
            World(commits={"ccccccc": CommitState.OTHER_BRANCH}),
            "deploy",
            "newer-build",
            MID,
            {"commit-not-on-branch": 1},
        ),
        (
            World(commits={"ccccccc": CommitState.AMBIGUOUS}),
            "deploy",
            "newer-build",
            MID,
            {"commit-ambiguous": 1},
        ),
        (World(labels={NEW: full("eeeeeee")}), "deploy", "newer-build", MID, {"revision-mismatch": 1}),
        (World(labels={NEW: None}), "deploy", "newer-build", NEW, {}),  # no label: nothing to disagree
        (World(signed={NEW: GOOD_SIGNATURE, MID: GOOD_SIGNATURE}), "deploy", "newer-build", NEW, {}),
        (
            World(signed={NEW: BAD_SIGNATURE, MID: GOOD_SIGNATURE}),
            "deploy",
            "newer-build",
            MID,
            {"signature-invalid": 1},
        ),
        (World(signed={MID: GOOD_SIGNATURE}), "deploy", "newer-build", MID, {"unsigned": 1}),
        (
            World(commits={"ccccccc": CommitState.MISSING, "bbbbbbb": CommitState.OTHER_BRANCH}),
            "hold",
            "commit-unknown",  # the newest refused candidate's reason
            None,
            {"commit-unknown": 1, "commit-not-on-branch": 1},
        ),
    ],
)
def test_a_refused_candidate_is_skipped_and_the_next_considered(
    world: World, action: str, reason: str, target: str | None, ignored: dict[str, int]
) -> None:
    decision = settle(world, Running(OLD, digest_of(OLD)), [OLD, MID, NEW], claims(world))
    assert (decision.action, decision.reason, decision.target_tag if action == "deploy" else None) == (
        action,
        reason,
        target,
    )
    refused = {k: v for k, v in decision.ignored.items() if k not in ("older-than-running",)}
    assert refused == ignored
    assert [r.code for r in decision.refusals] == [code for code, n in ignored.items() for _ in range(n)]
    if action == "deploy":
        assert decision.digest == digest_of(target or "")


def test_the_commits_of_every_newer_candidate_are_asked_at_once() -> None:
    world = World()
    settle(world, Running(OLD, digest_of(OLD)), [OLD, MID, NEW], claims(world))
    [need] = [a for a in world.asked if isinstance(a, NeedCommit)]
    assert [sha[:7] for sha, _ in need.shas] == ["ccccccc", "bbbbbbb"]
    assert all(branches == ("main",) for _, branches in need.shas)


def test_a_future_dated_tag_is_refused_with_its_own_reason_not_the_soak_time() -> None:
    world = World()
    decision = settle(world, Running(NEW, digest_of(NEW)), [OLD, NEW, FUTURE], claims(world))
    assert (decision.action, decision.reason) == ("hold", "dated-in-the-future")
    assert FUTURE in decision.sentence
    assert "in the future" in decision.sentence
    within_skew = tag(-0.05, "ddddddd")  # three minutes ahead: a clock's skew, not a false claim
    decision = settle(World(), Running(NEW, digest_of(NEW)), [OLD, NEW, within_skew], claims(world))
    assert (decision.action, decision.reason) == ("hold", "too-young")  # it waits for its time, unrefused
    assert not decision.refusals


def test_without_a_source_repository_the_label_must_start_with_the_short_sha() -> None:
    world = World(labels={NEW: "ccccccc" + "1" * 33})
    decision = settle(world, Running(OLD, digest_of(OLD)), [OLD, NEW], claims(world, source=False))
    assert (decision.action, decision.target_tag) == ("deploy", NEW)
    assert not any(isinstance(a, NeedCommit) for a in world.asked)
    world = World(labels={NEW: "deadbee" + "1" * 33})
    decision = settle(world, Running(OLD, digest_of(OLD)), [OLD, NEW], claims(world, source=False))
    assert (decision.action, decision.reason) == ("hold", "revision-mismatch")


def test_a_candidate_tag_that_moved_is_not_followed() -> None:
    world = World(repointed={NEW: digest_of("re-pushed")})
    decision = settle(
        world, Running(OLD, digest_of(OLD)), [OLD, NEW], claims(world, recorded={NEW: digest_of(NEW)})
    )
    assert (decision.action, decision.reason) == ("hold", "tag-moved")
    assert "re-pushed or tampered" in decision.sentence


def test_the_running_tag_moved_is_said_when_the_reconciler_looks() -> None:
    world = World(repointed={NEW: digest_of("re-pushed")})
    running = Running(NEW, digest_of(NEW))
    decision = settle(world, running, [OLD, NEW], claims(world, recheck=True))
    assert (decision.action, decision.reason) == ("hold", "tag-moved")
    assert [r.tag for r in decision.refusals] == [NEW]
    # not asked to look (the tag list did not change): no request, nothing said
    world.asked.clear()
    decision = settle(world, running, [OLD, NEW], claims(world))
    assert (decision.action, decision.reason) == ("nothing", "up-to-date")
    assert not any(isinstance(a, NeedDigest) for a in world.asked)


def test_the_steady_state_asks_for_nothing() -> None:
    world = World(signed={})
    decision = settle(world, Running(NEW, digest_of(NEW)), [OLD, MID, NEW], claims(world))
    assert (decision.action, decision.reason) == ("nothing", "up-to-date")
    assert world.asked == [decision]


def test_every_refusal_code_is_a_reason() -> None:
    from tagtrail.domain.reasons import REFUSALS as Refused

    assert {r.value for r in Refused} <= {r.value for r in Reason}


def test_a_first_deploy_over_many_builds_asks_about_a_few_commits_at_a_time() -> None:
    many = [tag(100 - n, f"{n:07x}") for n in range(40)]
    world = World()
    decision = settle(world, Running("bootstrap", None), many, claims(world))
    assert (decision.action, decision.target_tag) == ("deploy", many[-1])
    [need] = [a for a in world.asked if isinstance(a, NeedCommit)]
    assert len(need.shas) == 16


def test_a_thousand_refused_builds_are_walked_in_two_rounds_of_commit_questions() -> None:
    """Issue 25: an app whose thousand newer builds are all refused is decided within the reconciler's
    rounds, on every look: 16 commits asked first, then every one left at once."""
    newer = [tag(47 - n / 25, f"{n:07x}") for n in range(1000)]
    world = World(commits={f"{n:07x}": CommitState.OTHER_BRANCH for n in range(1000)})
    decision = settle(world, Running(OLD, digest_of(OLD)), [OLD, *newer], claims(world))
    assert (decision.action, decision.reason) == ("hold", "commit-not-on-branch")
    assert decision.ignored["commit-not-on-branch"] == 1000
    assert [len(a.shas) for a in world.asked if isinstance(a, NeedCommit)] == [16, 984]
