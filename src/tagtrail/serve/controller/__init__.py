"""tagtrail serve's controller: triggers (coalescing hints), schedule and backoff, announcements, the
dashboard's snapshot, and the loop that ties them to one Reconciler."""

from tagtrail.serve.controller.controller import ACTOR, Controller

__all__ = ["ACTOR", "Controller"]
