"""Observe → decide → act → record: the reconciler and the outcomes it returns."""

from tagtrail.reconcile.inspect import AppStatus, commit_times, history, status
from tagtrail.reconcile.manual import pin, rollback, unpin
from tagtrail.reconcile.outcome import Outcome, Planned, Report
from tagtrail.reconcile.reconciler import Reconciler, decision_log, matcher_for, target_for

__all__ = [
    "AppStatus",
    "Outcome",
    "Planned",
    "Reconciler",
    "Report",
    "commit_times",
    "decision_log",
    "history",
    "matcher_for",
    "pin",
    "rollback",
    "status",
    "target_for",
    "unpin",
]
