"""`tagtrail plan|deploy|status|history|rollback|pin|unpin`: the deploy side, one command each."""

from __future__ import annotations

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
)
from tagtrail.cli.deployed import deploy_record, pin_result, report_outcome
from tagtrail.cli.lanes import EnvOption, lanes_view, run_each, run_one
from tagtrail.cli.output import escape
from tagtrail.cli.planned import plan_table, planned_record, say_refusals, short_age
from tagtrail.reconcile import Reconciler, Report
from tagtrail.reconcile.applied import Applying, Deployed, follow_applied
from tagtrail.reconcile.follow import Followed, follow
from tagtrail.reconcile.placed import placed
from tagtrail.targets.base import Rollouts, Then

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


def _then_command(current: State) -> str | None:
    git = current.config().deploy.git
    return git.then if git else None


def _run(current: State, work: Callable[[Reconciler], Awaitable[T]], env: str | None = None) -> T:
    """Run one async operation with the reconciler of one environment (`--env`; the only one by default)."""
    return run_one(current, work, env)


@app.command("plan")
def plan(
    ctx: typer.Context,
    apps: AppsArgument = None,
    json: JsonOption = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 2 when a deploy is pending, 0 when none.")
    ] = False,
    env: EnvOption = None,
) -> None:
    """Show, per app, what runs (from the deploy files), the newest eligible build, and what deploy would
    do and why. Writes nothing (the decisions go to the decision log). With environments, each app in one
    row across them: what runs where, and what waits at which gate and why."""
    current = state(ctx)
    lanes = run_each(current, lambda r: placed(r, r.plan(apps, actor="tagtrail plan")), env)
    planned = [p for _, lane in lanes for p in lane]
    if current.config().environments:
        lanes_view(lanes, json)
    elif json:
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
    env: EnvOption = None,
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
    registry (the others were deployed). With environments, each in turn (or only --env), a build promoted
    from the one before once its gate opens."""
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

    lanes = run_each(current, deploy_and_follow, env)
    several = bool(current.config().environments)
    said = []
    for name, (report, applying, followed) in lanes:
        if json:
            record = deploy_record(report, applying, followed, dry_run)
            said.append(({"environment": name} if several else {}) | record)
            continue
        if several:
            output.stderr.print(f"[bold]{escape(name)}[/]", highlight=False)
        plan_table(report.planned)
        report_outcome(report, dry_run, _then_command(current))
        print_applying(applying)
        print_followed(followed)
    if json:
        output.print_json(said if several else said[0])
    reports = [report for _, (report, _, _) in lanes]
    for report, applying, followed in (lane for _, lane in lanes):
        if applying is not None and applying.state != "applied":
            raise typer.Exit(EXIT_FAILED)
        rollouts, then = Rollouts.of(report.applied.details), report.applied.details.get(Then)
        if (then is not None and then.exit != 0) or rollouts.rolled_back or rollouts.failed:
            raise typer.Exit(EXIT_FAILED)
        if any(not f.ok for f in followed):
            raise typer.Exit(EXIT_FAILED)
    unread = [p.app for report in reports for p in report.planned if p.error is not None]
    if unread and not dry_run:
        output.warn(f"not deployed, their registry could not be read: {', '.join(unread)}")
        raise typer.Exit(EXIT_UNREAD)
    if detailed_exitcode and all(report.applied.commit is None for report in reports):
        raise typer.Exit(EXIT_NOTHING)


@app.command("status")
def status(
    ctx: typer.Context, apps: AppsArgument = None, json: JsonOption = False, env: EnvOption = None
) -> None:
    """Per app: what git declares (tag, digest, commit, branch, age), the newest eligible build, how many
    eligible builds behind, whether it is pinned, and the last deploy (when, by whom, why); with
    deploy.git.applied_by, whether the Stack applied its commit (applied, pending, not-applied, failed).
    With environments (and no --env), each app in one row across them, and what waits at which gate."""
    current = state(ctx)
    if current.config().environments and env is None:
        lanes = run_each(current, lambda r: reconcile.status(r, apps, actor="tagtrail status"))
        lanes_view([(name, [row.planned for row in rows]) for name, rows in lanes], json)
        return
    rows = _run(current, lambda r: reconcile.status(r, apps, actor="tagtrail status"), env)
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
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    json: JsonOption = False,
    env: EnvOption = None,
) -> None:
    """Every change of the app's image reference in the git log of the deploy files (of one environment):
    by tagtrail (with its reason) or by a person ("manual")."""
    entries = _run(state(ctx), lambda r: reconcile.history(r, app_name), env)
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
    env: EnvOption = None,
) -> None:
    """Deploy an earlier build of APP and pin it in tagtrail.yaml, in one commit, so automation does not
    undo it. `tagtrail unpin APP` resumes automatic deploys. In an environment (--env), only there: a
    rollback in one an environment takes from stops that build's promotion."""
    report = _run(state(ctx), lambda r: reconcile.rollback(r, app_name, to, actor="tagtrail rollback"), env)
    target = report.planned[0].target if report.planned else None
    pin_result(report, f"{app_name} rolled back to {target.tag if target else to} and pinned")


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
    env: EnvOption = None,
) -> None:
    """Deploy TAG for APP and hold it there (deploy.pins in tagtrail.yaml; an environment's own pins with
    --env), in one commit. TAG must be a build of the scheme on a deploy branch, unless --force."""
    report = _run(
        state(ctx), lambda r: reconcile.pin(r, app_name, tag, actor="tagtrail pin", force=force), env
    )
    pin_result(report, f"{app_name} pinned at {tag}")


@app.command("unpin")
def unpin(
    ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")], env: EnvOption = None
) -> None:
    """Remove APP's pin (one commit; in --env's environment): the next deploy moves it to the newest
    eligible build again."""
    report = _run(state(ctx), lambda r: reconcile.unpin(r, app_name, actor="tagtrail unpin"), env)
    pin_result(report, f"{app_name} unpinned")
