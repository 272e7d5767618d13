"""`tagtrail plan|deploy|status|history|rollback|pin|unpin`: the deploy side, one command each."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Annotated, TypeVar

import typer

from tagtrail import reconcile
from tagtrail.cli import output
from tagtrail.cli.app import State, app, state
from tagtrail.cli.cluster import (
    applying_record,
    applying_text,
    cluster_record,
    cluster_text,
    print_applying,
    print_followed,
    written,
)
from tagtrail.cli.output import escape
from tagtrail.cli.planned import plan_table, planned_record, say_refusals, short_age
from tagtrail.reconcile import Reconciler, Report
from tagtrail.reconcile.applied import Applying, Deployed, follow_applied
from tagtrail.reconcile.follow import Followed, follow
from tagtrail.reconcile.placed import placed
from tagtrail.targets.base import Applied, Reviewing, Rollouts, Then

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AppsArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="[APP]...", help="Apps to consider. Default: every app in the deploy files."),
]
EXIT_PENDING = 2
# `deploy`'s exit codes, like terraform's detailed ones (README: "Exit codes")
EXIT_FAILED = 1
EXIT_NOTHING = 2  # with --detailed-exitcode only: there was nothing to deploy
EXIT_UNREAD = 4  # some apps could not be read from the registry: they were not deployed


T = TypeVar("T")


def _run(current: State, work: Callable[[Reconciler], Awaitable[T]]) -> T:
    """Run one async operation with a reconciler of this project (the one place the CLI enters asyncio)."""
    config = current.config()
    path = (current.config_path or current.project_root() / "tagtrail.yaml").resolve()

    async def main() -> T:
        async with Reconciler.open(config, path) as reconciler:
            return await work(reconciler)

    return asyncio.run(main())


@app.command("plan")
def plan(
    ctx: typer.Context,
    apps: AppsArgument = None,
    json: JsonOption = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 2 when a deploy is pending, 0 when none.")
    ] = False,
) -> None:
    """Show, per app, what runs (from the deploy files), the newest eligible build, and what deploy would
    do and why. Writes nothing (the decisions go to the decision log)."""
    planned = _run(state(ctx), lambda r: placed(r, r.plan(apps, actor="tagtrail plan")))
    if json:
        output.print_json([planned_record(p) for p in planned])
    else:
        plan_table(planned)
    if exit_code and any(p.decision.action == "deploy" for p in planned):
        raise typer.Exit(EXIT_PENDING)


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    apps: AppsArgument = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the change as a diff; write and push nothing.")
    ] = False,
    skip_ci: Annotated[
        bool | None,
        typer.Option(
            "--skip-ci/--no-skip-ci",
            help="Add [skip ci] to the commit (default: deploy.git.skip_ci).",
            show_default=False,
        ),
    ] = None,
    json: JsonOption = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 2 when there was nothing to deploy (0: deployed)."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="GitOps with kubernetes: set: after the commit, wait (up to kubernetes.follow) until the"
            " cluster runs what was deployed, and exit 1 if it does not; with deploy.git.applied_by, first"
            " until the Stack applied the commit (exit 1 if it failed or did not within applied_by.timeout).",
        ),
    ] = False,
) -> None:
    """Apply every pending update in one commit of the deploy files (image references pinned by digest,
    trailers saying app, from, to, commit and reason), push it, and run deploy.git.then. A rejected push
    is retried on the new remote head, never forced. With deploy.git.pull_request, push it to a branch of
    tagtrail's own and open or update its pull request instead: pending review until it is merged
    (deploy.git.then runs once after each merge a deploy sees). In
    direct mode (deploy.kubernetes), patch the workloads instead, watch the rollout, and roll a failed one
    back (and pin it).

    Exit codes: 0 done; 1 failed (nothing, or not everything, was written; `then` failed; a rollout
    failed); 2 nothing to deploy (with --detailed-exitcode); 4 some apps could not be read from the
    registry (the others were deployed)."""
    current = state(ctx)

    async def deploy_and_follow(r: Reconciler) -> tuple[Report, Applying | None, list[Followed]]:
        report = await placed(r, r.run(apps, actor="tagtrail deploy", dry_run=dry_run, skip_ci=skip_ci))
        if not wait or dry_run:
            return report, None, []
        deployed = Deployed.of_report(report)
        applying = await follow_applied(r, deployed, actor="tagtrail deploy") if deployed else None
        if applying is not None and applying.state != "applied":
            return report, applying, []  # what the cluster runs follows only from an applied commit
        return report, applying, await follow(r, report, actor="tagtrail deploy")

    report, applying, followed = _run(current, deploy_and_follow)
    outcome = report.applied
    rollouts, then = Rollouts.of(outcome.details), outcome.details.get(Then)
    if json:
        output.print_json(
            {
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
            }
            | ({} if applying is None else {"applied": applying_record(applying)})
        )
    else:
        plan_table(report.planned)
        _report_outcome(current, report, dry_run)
        print_applying(applying)
        print_followed(followed)
    if applying is not None and applying.state != "applied":
        raise typer.Exit(EXIT_FAILED)
    if (then is not None and then.exit != 0) or rollouts.rolled_back or rollouts.failed:
        raise typer.Exit(EXIT_FAILED)
    if any(not f.ok for f in followed):
        raise typer.Exit(EXIT_FAILED)
    unread = [p.app for p in report.planned if p.error is not None]
    if unread and not dry_run:
        output.warn(f"not deployed, their registry could not be read: {', '.join(unread)}")
        raise typer.Exit(EXIT_UNREAD)
    if detailed_exitcode and outcome.commit is None:
        raise typer.Exit(EXIT_NOTHING)


def _report_outcome(current: State, report: Report, dry_run: bool) -> None:
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
    if _said_pending(outcome):
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
        git = current.config().deploy.git
        command = git.then if git else None
        output.stderr.print(f"then: {escape(command or '')} {status}", highlight=False)
        if then.output:
            output.stderr.print(then.output.rstrip(), markup=False, highlight=False)


@app.command("status")
def status(ctx: typer.Context, apps: AppsArgument = None, json: JsonOption = False) -> None:
    """Per app: what git declares (tag, digest, commit, branch, age), the newest eligible build, how many
    eligible builds behind, whether it is pinned, and the last deploy (when, by whom, why); with
    deploy.git.applied_by, whether the Stack applied its commit (applied, pending, not-applied, failed)."""
    rows = _run(state(ctx), lambda r: reconcile.status(r, apps, actor="tagtrail status"))
    if json:
        output.print_json(
            [
                planned_record(r.planned)
                | {
                    "pinned": r.pinned,
                    "last_deploy": None
                    if r.last_deploy is None
                    else {
                        "commit": r.last_deploy.commit,
                        "time": output.iso(r.last_deploy.time),
                        "by": r.last_deploy.actor_name,
                        "reason": r.last_deploy.reason or "manual",
                    },
                    "last_decision": None
                    if r.last_decision is None
                    else {
                        "time": output.iso(r.last_decision.time),
                        "action": r.last_decision.action,
                        "reason": r.last_decision.reason,
                        "sentence": r.last_decision.sentence,
                    },
                }
                | ({} if r.cluster is None else {"cluster": cluster_record(r)})
                | ({} if r.applying is None else {"applied": applying_record(r.applying)})
                for r in rows
            ]
        )
        return
    observed = any(r.cluster is not None for r in rows)
    applied = any(r.applying is not None for r in rows)
    columns = ["APP", "DECLARED", "COMMIT", "AGE", "NEWEST ELIGIBLE", "BEHIND", "PINNED", "LAST DEPLOY"]
    columns += ["APPLIED"] if applied else []
    table = output.table(*columns, *(["CLUSTER"] if observed else []), box=None, pad_edge=False)
    for r in rows:
        d = r.planned.decision
        running = d.running_parsed
        built = max(running.instants) if running and running.instants else None
        newest = (
            d.target_tag
            if d.target_tag and d.target_tag != d.running.tag
            else ("current" if d.action == "nothing" else "-")
        )
        if r.planned.review is not None:
            newest += f" (pending-review {r.planned.review.shown})"
        last = r.last_deploy
        last_text = (
            f"{short_age(last.time)} ago by {last.actor_name} ({last.reason or 'manual'})" if last else "-"
        )
        table.add_row(
            d.app,
            escape(d.running.tag or "-"),
            running.sha if running else "-",
            short_age(built),
            escape(newest),
            "-" if d.behind is None else str(d.behind),
            r.pinned or "-",
            escape(last_text),
            *([escape(applying_text(r.applying))] if applied else []),
            *([escape(cluster_text(r))] if observed else []),
        )
    output.print_table(table)
    say_refusals([r.planned for r in rows])


@app.command("history")
def history(
    ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")], json: JsonOption = False
) -> None:
    """Every change of the app's image reference in the git log of the deploy files: by tagtrail (with
    its reason) or by a person ("manual")."""
    entries = _run(state(ctx), lambda r: reconcile.history(r, app_name))
    if json:
        output.print_json(
            [
                {
                    "commit": e.commit,
                    "time": output.iso(e.time),
                    "author": e.author,
                    "by": e.actor_name,
                    "from": e.before,
                    "to": e.after,
                    "tag": e.tag,
                    "digest": e.digest,
                    "reason": e.reason or "manual",
                    "built_from": e.built_from,
                }
                for e in entries
            ]
        )
        return
    table = output.table("WHEN", "COMMIT", "BY", "TAG", "REASON", box=None, pad_edge=False)
    for e in entries:
        table.add_row(
            f"{e.time.astimezone(UTC):%Y-%m-%d %H:%M}",
            e.commit[:12],
            escape(e.actor_name),
            escape(e.tag or e.after or "-"),
            e.reason or "manual",
        )
    output.print_table(table)


def _said_pending(applied: Applied) -> bool:
    """The pull requests a write proposed (deploy.git.pull_request): deployed once merged."""
    pending = Reviewing.of(applied.details).pending
    for name, review in pending.items():
        output.stderr.print(f"[yellow]…[/] {name}: pending-review {escape(review.shown)}", highlight=False)
    return bool(pending)


def _pin_result(report: Report, what: str) -> None:
    outcome = report.applied
    if _said_pending(outcome):
        return
    if outcome.commit is None:
        output.stderr.print(f"{what}: nothing to change", highlight=False)
        return
    output.stderr.print(f"[green]✓[/] {what}: {written(outcome)}", highlight=False)
    rollouts = Rollouts.of(outcome.details)
    for name, why in {**rollouts.failed, **rollouts.rolled_back}.items():
        output.stderr.print(f"[red]✗[/] {name}: {escape(why)}", highlight=False)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    to: Annotated[
        str | None,
        typer.Option(
            metavar="SHA|TAG",
            help="A tag, or a commit (short sha ok): its newest build. Default: the previous deploy.",
        ),
    ] = None,
) -> None:
    """Deploy an earlier build of APP and pin it in tagtrail.yaml, in one commit, so automation does not
    undo it. `tagtrail unpin APP` resumes automatic deploys."""
    report = _run(state(ctx), lambda r: reconcile.rollback(r, app_name, to, actor="tagtrail rollback"))
    target = report.planned[0].target if report.planned else None
    _pin_result(report, f"{app_name} rolled back to {target.tag if target else to} and pinned")


@app.command("pin")
def pin(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    tag: Annotated[str, typer.Argument(metavar="TAG")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Pin a tag that is not an eligible build (latest, a feature branch); the commit says so.",
        ),
    ] = False,
) -> None:
    """Deploy TAG for APP and hold it there (deploy.pins in tagtrail.yaml), in one commit. TAG must be a
    build of the scheme on a deploy branch, unless --force."""
    report = _run(state(ctx), lambda r: reconcile.pin(r, app_name, tag, actor="tagtrail pin", force=force))
    _pin_result(report, f"{app_name} pinned at {tag}")


@app.command("unpin")
def unpin(ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")]) -> None:
    """Remove APP's pin (one commit): the next deploy moves it to the newest eligible build again."""
    report = _run(state(ctx), lambda r: reconcile.unpin(r, app_name, actor="tagtrail unpin"))
    _pin_result(report, f"{app_name} unpinned")
