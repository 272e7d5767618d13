"""What a deploy, rollback or pin did, said: the JSON record of a deploy and the lines on stderr."""

from __future__ import annotations

import difflib

from tagtrail.cli import output
from tagtrail.cli.cluster import applying_record, written
from tagtrail.cli.output import escape
from tagtrail.cli.planned import planned_record
from tagtrail.reconcile import Report
from tagtrail.reconcile.applied import Applying
from tagtrail.reconcile.follow import Followed
from tagtrail.targets.base import Applied, Reviewing, Rollouts, Then


def deploy_record(
    report: Report, applying: Applying | None, followed: list[Followed], dry_run: bool
) -> dict[str, object]:
    """A deploy's outcome as `--json` prints it."""
    outcome = report.applied
    rollouts, then = Rollouts.of(outcome.details), outcome.details.get(Then)
    return {
        "apps": [planned_record(p) for p in report.planned],
        "changed": report.changed,
        "commit": outcome.commit,
        "pushed": outcome.pushed,
        "attempts": outcome.attempts,
        "dry_run": dry_run,
        "then": {"exit": then.exit, "output": then.output} if then is not None else None,
        "pending_review": {
            app: {"number": r.number, "url": r.url}
            for app, r in Reviewing.of(outcome.details).pending.items()
        },
        "rollouts": rollouts.ended,
        "rolled_back": rollouts.rolled_back,
        "failed": rollouts.failed,
        "followed": [{"app": f.app, "ok": f.ok, "sentence": f.sentence} for f in followed],
    } | ({} if applying is None else {"applied": applying_record(applying)})


def report_outcome(report: Report, dry_run: bool, then_command: str | None) -> None:
    """What a deploy wrote (or, dry, would write), its rollouts and its `then`, on stderr."""
    outcome = report.applied
    if dry_run:
        if not outcome.files:
            output.stderr.print("nothing to deploy")
        for path, text in outcome.files.items():
            before = outcome.before.get(path) or ""
            diff = difflib.unified_diff(
                before.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{path}", f"b/{path}"
            )
            output.stdout.print("".join(diff), end="", highlight=False, markup=False)
        return
    if said_pending(outcome):
        return
    if outcome.commit is None:
        output.stderr.print("nothing to deploy: every app is current, held or pinned", highlight=False)
        return
    retried = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    output.stderr.print(
        f"[green]✓[/] {', '.join(report.changed)}: {written(outcome)}{retried}", highlight=False
    )
    rollouts = Rollouts.of(outcome.details)
    for name, how in rollouts.ended.items():
        if name not in rollouts.rolled_back and name not in rollouts.failed:
            output.stderr.print(f"rollout of {name}: {escape(how)}", highlight=False)
    for name, why in {**rollouts.failed, **rollouts.rolled_back}.items():
        verb = "rolled back" if name in rollouts.rolled_back else "left as it is"
        output.stderr.print(f"[red]✗[/] {name}: {escape(why)} ({verb})", highlight=False)
    then = outcome.details.get(Then)
    if then is not None:
        status = "[green]ok[/]" if then.exit == 0 else f"[red]failed with exit {then.exit}[/]"
        output.stderr.print(f"then: {escape(then_command or '')} {status}", highlight=False)
        if then.output:
            output.stderr.print(then.output.rstrip(), markup=False, highlight=False)


def said_pending(applied: Applied) -> bool:
    """The pull requests a write proposed (deploy.git.pull_request): deployed once merged."""
    pending = Reviewing.of(applied.details).pending
    for name, review in pending.items():
        output.stderr.print(f"[yellow]…[/] {name}: pending-review {escape(review.shown)}", highlight=False)
    return bool(pending)


def pin_result(report: Report, what: str) -> None:
    """What a rollback, pin or unpin wrote, on stderr."""
    outcome = report.applied
    if said_pending(outcome):
        return
    if outcome.commit is None:
        output.stderr.print(f"{what}: nothing to change", highlight=False)
        return
    output.stderr.print(f"[green]✓[/] {what}: {written(outcome)}", highlight=False)
    rollouts = Rollouts.of(outcome.details)
    for name, why in {**rollouts.failed, **rollouts.rolled_back}.items():
        output.stderr.print(f"[red]✗[/] {name}: {escape(why)}", highlight=False)
