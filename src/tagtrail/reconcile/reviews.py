"""The pull requests a target proposed (deploy.git.pull_request), read into the decisions: a build a person
declined is held with reason `declined` naming the pull request (a newer build may be proposed); a pending
rollback or pin of a person holds automation as a pin does; a deploy already proposed says
`pending-review #N URL`, so plan, status, the dashboard and the decision log all show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tagtrail.domain.policy import Decision, Reason
from tagtrail.reconcile.outcome import Planned
from tagtrail.targets.base import Applied, Review, Reviewing

PENDING = "pending-review"


def reviewed(
    planned: list[Planned], reviews: Mapping[str, tuple[Review, ...]], *, say: bool = True
) -> list[Planned]:
    """`planned` with what the pull requests of each app say. `say` False (a deploy, before it writes): a
    pending one is only noted, so the change (and the pull request's text) is worked out from the policy's
    own sentence; `proposed` says it once written."""
    return [_reviewed(item, reviews.get(item.app, ()), say) if reviews else item for item in planned]


def _reviewed(item: Planned, reviews: tuple[Review, ...], say: bool) -> Planned:
    target = item.target
    if target is None or not reviews:
        return item
    decision = item.decision
    person = next((r for r in reviews if r.state == "open" and r.verb != "deploy"), None)
    if person is not None:
        said = f"a person's {person.verb} is pending review ({person.shown}): automation waits for it"
        return replace(item, decision=_hold(decision, Reason.PINNED, said))
    declined = next((r for r in reviews if r.state == "declined" and r.proposes(target.reference)), None)
    if declined is not None:
        said = (
            f"{target.tag} was declined: pull request {declined.shown} was closed without merging;"
            " a newer build may be proposed"
        )
        return replace(item, decision=_hold(decision, Reason.DECLINED, said))
    pending = next((r for r in reviews if r.state == "open" and r.proposes(target.reference)), None)
    return _pending(item, pending, say) if pending is not None else item


def proposed(planned: list[Planned], applied: Applied) -> list[Planned]:
    """`planned` with the pull requests this write opened or updated (`Reviewing`)."""
    pending = Reviewing.of(applied.details).pending
    return [_pending(item, pending[item.app]) if item.app in pending else item for item in planned]


def _pending(item: Planned, review: Review, say: bool = True) -> Planned:
    item = replace(item, review=review)
    if not say or item.decision.sentence.startswith(PENDING):
        return item
    sentence = f"{PENDING} {review.shown}: {item.decision.sentence}"
    return replace(item, decision=replace(item.decision, sentence=sentence))


def _hold(decision: Decision, reason: Reason, sentence: str) -> Decision:
    return replace(decision, action="hold", reason=reason, sentence=sentence)
