"""Observe → decide → act → record: the reconciler and the outcomes it returns."""

from tagtrail.reconcile.inspect import AppStatus, commit_times, history, status
from tagtrail.reconcile.manual import pin, rollback, unpin
from tagtrail.reconcile.outcome import Outcome, Planned, Report
from tagtrail.reconcile.promote import promote
from tagtrail.reconcile.reconciler import Reconciler

__all__ = [
    "AppStatus",
    "Outcome",
    "Planned",
    "Reconciler",
    "Report",
    "commit_times",
    "history",
    "pin",
    "promote",
    "rollback",
    "status",
    "unpin",
]
