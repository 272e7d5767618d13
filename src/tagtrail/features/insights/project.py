"""The insights of one project: its deploy history and built commits read once per deploy head (what the
CLI report and the dashboard share), and the measures of any window worked out from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import DecisionLog
from tagtrail.adapters.refs import Matcher
from tagtrail.config import Config
from tagtrail.config.deployfiles import deploy_files
from tagtrail.features.insights.measures import Event, Insights, ages, classify, measure, running_since
from tagtrail.features.insights.read import Reading, built_commits, read_history


@dataclass(frozen=True)
class DeployFacts:
    """Everything the measures need, read at one head of the deploy branch, with every change classified
    once (the dashboard keeps this between deploys and works out any window from it)."""

    head: str
    reading: Reading
    events: tuple[Event, ...]
    running_since: Mapping[str, datetime | None]

    def insights(
        self,
        since: timedelta,
        now: datetime,
        *,
        app: str | None = None,
        behind: Mapping[str, int | None] | None = None,
    ) -> Insights:
        """The measures of the last `since` up to `now`, of every app or of `app`."""
        events = self.events if app is None else tuple(e for e in self.events if e.app == app)
        started = {k: v for k, v in self.running_since.items() if app is None or k == app}
        return measure(
            events,
            start=now - since,
            end=now,
            ages=ages(started, now),
            behind={k: v for k, v in (behind or {}).items() if app is None or k == app},
        )


def read_facts(config: Config, deploy: GitRepo, source: GitRepo, log: DecisionLog | None) -> DeployFacts:
    """The deploy history of `deploy` (the files deploy.git names) with the built commits as `source`
    (the monorepo) has them, and the automatic rollbacks the decision log records."""
    files = deploy_files(config, deploy.root)
    head = deploy.head_sha()
    reading = read_history(deploy, files, Matcher.from_config(config), head)
    scheme = config.tag_scheme
    built = built_commits(source, reading.entries, scheme)
    automatic = log.automatic_rollback_commits() if log is not None else set()
    git = config.deploy.git
    applied = log.applied_commits() if log is not None and git and git.applied_by else None
    events = classify(reading.entries, scheme, built, automatic=automatic, applied=applied)
    return DeployFacts(head, reading, tuple(events), running_since(reading.entries, scheme, built))
