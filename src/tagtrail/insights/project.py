"""The insights of one project: its deploy history and built commits read once per deploy head (what the
CLI report and the dashboard share), and the measures of any window worked out from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tagtrail.config import Config
from tagtrail.gitrepo import GitRepo
from tagtrail.history import DecisionLog, default_log_path
from tagtrail.insights.measures import Built, Insights
from tagtrail.insights.read import Reading, built_commits, compute, read_history
from tagtrail.refs import Matcher
from tagtrail.scheme import Scheme


@dataclass(frozen=True)
class DeployFacts:
    """Everything the measures need, read at one head of the deploy branch."""

    head: str
    reading: Reading
    built: Mapping[str, Built]
    automatic: frozenset[str]  # automatic rollbacks, as the decision log has them
    scheme: Scheme

    def insights(
        self,
        since: timedelta,
        now: datetime,
        *,
        app: str | None = None,
        behind: Mapping[str, int | None] | None = None,
    ) -> Insights:
        return compute(
            self.reading,
            self.scheme,
            self.built,
            since=since,
            now=now,
            automatic=self.automatic,
            behind=behind,
            app=app,
        )


def decision_log_of(config: Config) -> DecisionLog:
    path = config.deploy.decision_log
    return DecisionLog(Path(path).expanduser() if path else default_log_path())


def read_facts(config: Config, deploy: GitRepo, source: GitRepo, log: DecisionLog | None) -> DeployFacts:
    """The deploy history of `deploy` (the files deploy.git names) with the built commits as `source`
    (the monorepo) has them, and the automatic rollbacks the decision log records."""
    files = list(config.deploy.git.files) if config.deploy.git else []
    head = deploy.head_sha()
    reading = read_history(deploy, files, Matcher.from_config(config), head)
    scheme = config.tag_scheme
    built = built_commits(source, reading.entries, scheme)
    automatic = frozenset(log.automatic_rollback_commits()) if log is not None else frozenset()
    return DeployFacts(head, reading, built, automatic, scheme)
