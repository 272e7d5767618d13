"""What people are told: a report or a failure, turned into notification messages. Pure: sending is the
Notifier's job. A registry that stays unreadable is told once, when it has failed `threshold` polls in a row;
a candidate whose claims were refused is told once, at its first refusal."""

from __future__ import annotations

from tagtrail.adapters.notify import Message
from tagtrail.domain.policy import Reason
from tagtrail.domain.provenance import Refusal
from tagtrail.reconcile import Report
from tagtrail.targets.base import Rollouts, Then


def deployed(report: Report) -> list[Message]:
    applied = report.applied
    if applied.commit is None:
        return []
    commit = applied.commit[:12]
    targets = {p.app: p.target.tag for p in report.planned if p.target is not None}
    lines = [f"{a}: {applied.previous.get(a) or 'nothing'} → {targets.get(a, '?')}" for a in report.changed]
    messages = [
        Message(
            f"tagtrail deployed {', '.join(report.changed)}",
            "\n".join(lines) + f"\ncommit {commit}",
            "success",
        )
    ]
    rollouts = Rollouts.of(applied.details)
    for app, why in rollouts.rolled_back.items():
        messages.append(Message(f"tagtrail rolled {app} back", why, "failure"))
    for app, why in rollouts.failed.items():
        messages.append(Message(f"tagtrail: the rollout of {app} failed", why, "failure"))
    then = applied.details.get(Then)
    if then is not None and then.exit != 0:
        messages.append(
            Message(
                "tagtrail: the command after a deploy failed",
                f"deploy.git.then exited {then.exit} after commit {commit}",
                "failure",
            )
        )
    return messages


def failed(error: str) -> Message:
    return Message("tagtrail: a deploy failed", error, "failure")


def action_failed(error: str) -> Message:
    return Message("tagtrail: an action failed", error, "failure")


def acted(report: Report, actor: str) -> list[Message]:
    """A person's rollback, pin or unpin."""
    if report.applied.commit is None:
        return []
    verb = "rolled back" if any(p.decision.reason == Reason.ROLLBACK for p in report.planned) else "changed"
    what = ", ".join(report.changed) or "pins"
    return [Message(f"tagtrail: {what} {verb}", f"{actor}; commit {report.applied.commit[:12]}", "info")]


class RegistryFailures:
    """Counts each app's registry failures in a row."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}

    def messages(self, report: Report, threshold: int) -> list[Message]:
        out = []
        for item in report.planned:
            if item.decision.reason != Reason.REGISTRY_ERROR:
                self._count.pop(item.app, None)
                continue
            count = self._count[item.app] = self._count.get(item.app, 0) + 1
            if count == threshold:
                out.append(
                    Message(
                        f"tagtrail: cannot read the registry for {item.app}",
                        f"{count} polls in a row failed: {item.decision.sentence}",
                        "warning",
                    )
                )
        return out


class Refusals:
    """Tells the first refusal of each candidate (app, tag, reason), never again; remembers a bounded
    number of them (the oldest forgotten first: a candidate refused that long ago is long gone)."""

    def __init__(self, limit: int = 4096) -> None:
        self._told: dict[tuple[str, str, str], None] = {}
        self._limit = limit

    def first(self, report: Report) -> list[tuple[str, Refusal]]:
        """The refusals in `report` not told before, as (app, refusal); from now on they are told."""
        out = []
        for item in report.planned:
            for refusal in item.decision.refusals:
                key = (item.app, refusal.tag, str(refusal.code))
                if key in self._told:
                    continue
                self._told[key] = None
                if len(self._told) > self._limit:
                    del self._told[next(iter(self._told))]
                out.append((item.app, refusal))
        return out


def refused(app: str, refusal: Refusal) -> Message:
    return Message(
        f"tagtrail refused {refusal.tag} for {app} ({refusal.code})",
        f"{refusal.sentence}\nNot deployed: a tag's claims are checked, not believed.",
        "warning",
    )
