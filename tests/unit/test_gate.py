"""An environment's gate, table-driven: a build comes from the environment before only when it runs there
(the same digest), rolled out and ready, for the soak, without a rollback, pin or failed rollout, and (a
manual gate) a person promotes it; each refusal has its code, and the soak counts from what ran."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_policy import MID, NEW, NOW, OLD, UTC_SCHEME, digest_of, settle

from tagtrail.domain.policy import (
    AppPolicy,
    Decision,
    Evidence,
    Facts,
    Gate,
    NeedEvidence,
    Reason,
    Running,
    decide,
)
from tagtrail.domain.scheme import rank

SOAK = timedelta(minutes=30)
PROD = AppPolicy(("main",), gate=Gate("staging", SOAK))
MANUAL = AppPolicy(("main",), gate=Gate("staging", SOAK, manual=True))


def ran(tag: str, minutes: float | None, **more: object) -> Evidence:
    """Staging runs `tag` since `minutes` ago (None: not rolled out yet)."""
    since = None if minutes is None else NOW - timedelta(minutes=minutes)
    return Evidence(tag, digest_of(tag), since, **more)  # type: ignore[arg-type]


def prod(evidence: Evidence, policy: AppPolicy = PROD, *, approved: bool = False) -> Decision:
    facts = Facts(rank(UTC_SCHEME, [OLD, MID, NEW], ("main",)), NOW, evidence=evidence, approved=approved)
    return settle(UTC_SCHEME, policy, Running(OLD, digest_of(OLD)), facts)


@pytest.mark.parametrize(
    ("evidence", "action", "reason", "target", "said"),
    [
        (ran(MID, 45), "deploy", Reason.PROMOTED, MID, "ran well in staging for 45m: promoted"),
        (ran(NEW, 45), "deploy", Reason.PROMOTED, NEW, "promoted"),
        (ran(MID, 10), "hold", Reason.SOAKING, None, "soaks in staging: 20m left of 30m"),
        (ran(MID, 29.5), "hold", Reason.SOAKING, None, "30s left of 30m"),
        (ran(MID, None), "hold", Reason.NOT_READY_IN_SOURCE, None, "has not rolled out in staging yet"),
        (ran(OLD, 45), "hold", Reason.NOT_IN_SOURCE, None, "the newer builds have not run in staging yet"),
        (
            ran(OLD, 45, failed={NEW: "rolled back by ann"}),
            "hold",
            Reason.FAILED_IN_SOURCE,
            None,
            "failed in staging: rolled back by ann",
        ),
        (ran(MID, 45, failed={NEW: "rolled back"}), "deploy", Reason.PROMOTED, MID, "promoted"),
        (ran(MID, 45, pinned=True), "hold", Reason.PINNED_IN_SOURCE, None, "pinned in staging"),
        (
            Evidence(MID, "sha256:" + "9" * 64, NOW - timedelta(hours=1)),
            "hold",
            Reason.NOT_IN_SOURCE,
            None,
            "and the tag now names",
        ),
    ],
    ids=[
        "soaked",
        "newest",
        "soaking",
        "seconds-left",
        "not-ready",
        "not-there",
        "failed",
        "good-before-failed",
        "pinned",
        "moved",
    ],
)
def test_the_gate(evidence: Evidence, action: str, reason: Reason, target: str | None, said: str) -> None:
    decision = prod(evidence)
    assert (decision.action, decision.reason) == (action, reason)
    assert said in decision.sentence
    if target is not None:
        assert decision.target_tag == target
        assert decision.digest == digest_of(target)


def test_a_manual_gate_waits_for_a_person_and_opens_for_them() -> None:
    waiting = prod(ran(MID, 45), MANUAL)
    assert (waiting.action, waiting.reason) == ("hold", Reason.AWAITING_APPROVAL)
    assert "tagtrail promote" in waiting.sentence
    promoted = prod(ran(MID, 45), MANUAL, approved=True)
    assert (promoted.action, promoted.reason, promoted.target_tag) == ("deploy", Reason.PROMOTED, MID)


def test_a_manual_gate_still_soaks_first() -> None:
    assert prod(ran(MID, 5), MANUAL, approved=True).reason == Reason.SOAKING


def test_the_gate_asks_for_its_evidence_once_a_newer_build_is_looked_at() -> None:
    facts = Facts(rank(UTC_SCHEME, [OLD, MID], ("main",)), NOW)
    assert decide("web", UTC_SCHEME, PROD, Running(OLD, digest_of(OLD)), facts) == NeedEvidence("staging")
    # what runs is all there is: nothing to ask
    steady = Facts(rank(UTC_SCHEME, [OLD], ("main",)), NOW, digests={OLD: digest_of(OLD)})
    assert isinstance(decide("web", UTC_SCHEME, PROD, Running(OLD, digest_of(OLD)), steady), Decision)


def test_an_older_build_in_staging_never_moves_prod_back() -> None:
    facts = Facts(rank(UTC_SCHEME, [OLD, MID], ("main",)), NOW, evidence=ran(OLD, 600))
    decision = settle(UTC_SCHEME, PROD, Running(MID, digest_of(MID)), facts)
    assert decision.action == "nothing"
    assert decision.target_tag == MID
