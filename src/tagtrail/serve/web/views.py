"""What the dashboard shows, shaped from the controller's state: one row per app, one page per app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tagtrail.adapters.history import DecisionRecord, HistoryEntry
from tagtrail.domain.policy import Reason
from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.reconcile import Planned


@dataclass(frozen=True)
class Row:
    app: str
    running: str | None
    sha: str | None
    commit_url: str | None
    built: datetime | None
    newest: str | None
    behind: int | None
    pinned: str | None
    reason: str
    sentence: str
    last_reason: str | None  # why the reference last changed (newer-build, rollback, manual, …)
    last_result: str | None  # what tagtrail's last deploy of it did: pushed, committed, failed: …
    last_time: datetime | None
    state: str  # current, behind, pinned, held, error — the badge's colour
    refused: tuple[str, ...] = ()  # candidates whose claims were not believed: "tag: reason"
    cluster: str | None = None  # what the cluster runs: "2/2 ready", "1/2 ready, progressing"
    drift: str | None = None  # why what the cluster runs is not what is declared

    @property
    def short_sha(self) -> str | None:
        return self.sha[:12] if self.sha else None


def commit_link(template: str | None, sha: str | None) -> str | None:
    if not template or not sha:
        return None
    return template.replace("{sha}", sha)


def row(
    planned: Planned,
    scheme: Scheme,
    pinned: str | None,
    last_deploy: HistoryEntry | None,
    last_result: DecisionRecord | None,
    commit_url: str | None,
    last_decision: DecisionRecord | None = None,
) -> Row:
    decision = planned.decision
    # the decision log holds every decision, an action's after the last reconcile's: show the newest
    reason, sentence = (
        (last_decision.reason, last_decision.sentence)
        if last_decision
        else (decision.reason, decision.sentence)
    )
    # the plan was made before its deploy: the deploy history (git) says what the files hold now
    running_tag = last_deploy.tag if last_deploy and last_deploy.tag else decision.running.tag
    deployed = decision.action == "deploy" and decision.target_tag == running_tag
    running = running_tag or (decision.running.digest[:19] if decision.running.digest else None)
    parsed = scheme.parse(running_tag) if running_tag else None
    sha = (last_deploy.built_from if last_deploy and last_deploy.tag == running_tag else None) or (
        parsed.sha if isinstance(parsed, ParsedTag) else None
    )
    built = parsed.time if isinstance(parsed, ParsedTag) else None
    behind = 0 if deployed else decision.behind
    if decision.action == "deploy":
        newest = decision.target_tag
    else:  # held: the newest eligible is what runs, except under a pin (then the plan does not look further)
        newest = None if decision.reason is Reason.PINNED else running_tag
    if (
        decision.reason is Reason.REGISTRY_ERROR
        or planned.error
        or (decision.action == "hold" and decision.refusals)
    ):
        state = "error"  # a refused candidate is a forged or broken build: worth a red badge
    elif pinned:
        state = "pinned"
    elif planned.review is not None and not deployed:  # proposed in a pull request, not merged yet
        state = "pending-review"
    elif (decision.action == "deploy" and not deployed) or (behind or 0) > 0:
        state = "behind"
    elif decision.reason in (Reason.TOO_YOUNG, Reason.COOLDOWN):
        state = "held"
    else:
        state = "current"
    when = last_deploy.time if last_deploy else None
    last_reason = (
        (last_deploy.reason or ("manual" if not last_deploy.by_tagtrail else None)) if last_deploy else None
    )
    return Row(
        decision.app,
        running,
        sha,
        commit_link(commit_url, sha),
        built,
        newest,
        behind,
        pinned,
        reason,
        sentence,
        last_reason,
        last_result.outcome if last_result else None,
        when,
        state,
        tuple(f"{r.tag}: {r.code}" for r in decision.refusals),
    )
