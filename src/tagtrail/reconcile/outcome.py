"""What a reconcile returns: per app, the decision with what the registry said and what came of it; for
the run, what the target did and whether (and when) to try again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from tagtrail.adapters.refs import Image
from tagtrail.domain.policy import Decision
from tagtrail.errors import GitError, GitHubError, KubeError, RegistryError
from tagtrail.targets.base import Applied, Proof, Review, Reviewing, Rollouts


class Outcome(StrEnum):
    """What came of one app's reconcile."""

    DEPLOYED = "deployed"  # the target now says what the policy chose
    HELD = "held"  # a guard, a pin or the cooldown kept what runs
    NOTHING = "nothing"  # already current
    STALLED = "stalled"  # permanent until someone acts: bad config, refused credentials, no such image
    RETRY = "retry"  # transient (timeout, 5xx, 429, unreachable remote): try again after a backoff
    ROLLED_BACK = "rolled-back"  # deployed, but its rollout failed: put back and pinned (cluster targets)
    FAILED = "failed"  # deployed, but its rollout failed and was left as it is (rollback: false)
    PENDING_REVIEW = "pending-review"  # proposed in a pull request: deployed once a person merges it


@dataclass
class Planned:
    """A decision with what the registry said about its target, and what came of it."""

    decision: Decision
    repository: str
    built_from: str | None = None
    requests: int = 0
    duration_ms: int = 0
    error: str | None = None
    transient: bool = False  # with `error`: trying again later may help
    tags_seen: int = 0
    created: dict[str, datetime] = field(default_factory=dict)
    review: Review | None = None  # the open pull request proposing this decision (deploy.git.pull_request)
    promoted: tuple[str, str] | None = None  # a promotion: (the environment before, what it showed there)
    soak_left: timedelta | None = None  # held by a soak: how long until it ends
    proof: Proof | None = None  # what the claims found of the build to deploy

    @property
    def app(self) -> str:
        return self.decision.app

    @property
    def digest(self) -> str | None:
        return self.decision.digest

    @property
    def target(self) -> Image | None:
        d = self.decision
        if d.action != "deploy" or d.target_tag is None or d.digest is None:
            return None
        return Image(self.repository, d.target_tag, d.digest)

    def outcome(self, changed: list[str]) -> Outcome:
        if self.error is not None:
            return Outcome.RETRY if self.transient else Outcome.STALLED
        if self.app in changed:
            return Outcome.DEPLOYED
        if self.decision.action == "hold":
            return Outcome.HELD
        return Outcome.NOTHING


@dataclass
class Report:
    """One reconcile (or one person's action): every app's plan and what the target did."""

    planned: list[Planned]
    applied: Applied = field(default_factory=Applied)

    @property
    def changed(self) -> list[str]:
        return self.applied.changed

    @property
    def commit(self) -> str | None:
        return self.applied.commit

    def outcomes(self) -> dict[str, Outcome]:
        outcomes = {p.app: p.outcome(self.changed) for p in self.planned}
        rollouts = Rollouts.of(self.applied.details)
        for app in rollouts.failed:
            outcomes[app] = Outcome.FAILED
        for app in rollouts.rolled_back:
            outcomes[app] = Outcome.ROLLED_BACK
        for app in Reviewing.of(self.applied.details).pending:
            outcomes[app] = Outcome.PENDING_REVIEW
        return outcomes


def outcome_of(error: BaseException) -> Outcome:
    """A reconcile that raised: RETRY where the error says trying again may help (`.transient`: a timeout, a
    5xx or 429, an unreachable API server, GitHub's rate limit) or git failed (a push rejected again and again, an unreachable
    remote), STALLED for the rest (refused credentials or a forbidden verb, no such image, a bad config, a
    file that does not parse, a bug), which waits for the interval or a config reload."""
    if isinstance(error, (RegistryError, KubeError, GitHubError)):
        return Outcome.RETRY if error.transient else Outcome.STALLED
    return Outcome.RETRY if isinstance(error, GitError) else Outcome.STALLED
