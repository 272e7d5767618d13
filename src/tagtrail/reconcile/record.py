"""Record: what a reconcile decided, and what came of it, as the decision log's rows."""

from __future__ import annotations

from tagtrail.adapters.history import DecisionRecord
from tagtrail.domain.policy import Reason
from tagtrail.reconcile.outcome import Report
from tagtrail.targets.base import Reviewing, Rollouts


def records(report: Report, actor: str, *, automatic: bool = False) -> list[DecisionRecord]:
    """The decision log's rows for `report`: one per decision, with the commit that carried it, and one per
    rollout that failed and was put back."""
    applied = report.applied
    pending = Reviewing.of(applied.details).pending
    rows = []
    for item in report.planned:
        d = item.decision
        acted = applied.commit is not None and d.app in applied.changed
        review = pending.get(d.app)
        rows.append(
            DecisionRecord(
                d.app,
                d.action,
                d.reason,
                d.sentence,
                d.running.shown,
                item.target.reference if item.target else d.target_tag,
                actor,
                item.tags_seen,
                d.ignored,
                item.requests,
                item.duration_ms,
                applied.commit if acted else None,
                ("pushed" if applied.pushed else "committed")
                if acted
                else (f"pending-review {review.shown}" if review else None),
                automatic=automatic,
            )
        )
    for app, why in Rollouts.of(applied.details).rolled_back.items():
        failed = next((p.target.reference for p in report.planned if p.app == app and p.target), None)
        sentence = f"rolled back: {why}"
        back = applied.previous.get(app)
        rows.append(
            DecisionRecord(
                app,
                "deploy",
                Reason.ROLLOUT_FAILED,
                sentence,
                failed,
                back,
                actor,
                commit=applied.commit,
                outcome="rolled back",
                automatic=automatic,
            )
        )
    return rows
