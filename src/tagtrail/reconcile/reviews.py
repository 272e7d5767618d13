"""The pull requests a target proposed (deploy.git.pull_request), read into the decisions: a build a person
declined is held with reason `declined` naming the pull request (a newer build may be proposed); a pending
rollback or pin of a person holds automation as a pin does; a deploy already proposed says
`pending-review #N URL`, so plan, status, the dashboard and the decision log all show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tagtrail.domain.policy import Decision, Reason
from tagtrail.reconcile.outcome import Planned
from tagtrail.targets.base import Review

PENDING = "pending-review"


def reviewed(planned: list[Planned], reviews: Mapping[str, tuple[Review, ...]]) -> list[Planned]:
    """`planned` with what the pull requests of each app say."""
    return [_reviewed(item, reviews.get(item.app, ())) if reviews else item for item in planned]


def _reviewed(item: Planned, reviews: tuple[Review, ...]) -> Planned:
    target = item.target
    if target is None or not reviews:
        return item
    decision = item.decision
    person = next((r for r in reviews if r.state == "open" and r.verb != "deploy"), None)
    if person is not None:
        said = f"a person's {person.verb} is pending review ({person.shown}): automation waits for it"
        return replace(item, decision=_hold(decision, Reason.PINNED, said))
    declined = next((r for r in reviews if r.state == "declined" and r.to == target.reference), None)
    if declined is not None:
        said = (
            f"{target.tag} was declined: pull request {declined.shown} was closed without merging;"
            " a newer build may be proposed"
        )
        return replace(item, decision=_hold(decision, Reason.DECLINED, said))
    pending = next((r for r in reviews if r.state == "open" and r.to == target.reference), None)
    if pending is not None:
        sentence = f"{PENDING} {pending.shown}: {decision.sentence}"
        return replace(item, decision=replace(decision, sentence=sentence))
    return item


def _hold(decision: Decision, reason: Reason, sentence: str) -> Decision:
    return replace(decision, action="hold", reason=reason, sentence=sentence)
