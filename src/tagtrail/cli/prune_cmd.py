"""`tagtrail prune`: registry retention, planned by default, applied with --apply."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from tagtrail.cli import output
from tagtrail.cli.app import EXIT_ERROR, app, state
from tagtrail.cli.output import escape
from tagtrail.domain.humanize import size
from tagtrail.features.retention.prune import AppPlan, PruneReport
from tagtrail.features.retention.run import prune_project

EXIT_PARTIAL = 4  # some repository could not be read, or deleting stopped early


def app_record(item: AppPlan) -> dict[str, Any]:
    graph = item.graph
    deletions = graph.deletions if graph else []
    return {
        "app": item.app,
        "image": item.image,
        "store": item.store.kind,
        "problem": item.problem,
        "tags": [
            {"tag": v.tag, "keep": v.kept or v.why == "referrer", "why": str(v.why), "sentence": v.sentence}
            for v in (graph.verdicts if graph else [])
        ],
        "deletions": [
            {
                "digest": d.digest,
                "tags": list(d.tags),
                "why": str(d.why),
                "sentence": d.sentence,
                "referrers": list(d.referrers),
                "children": list(d.children),
                "deleted": d in item.deleted,
            }
            for d in deletions
        ],
        "blocked": [{"digest": d.digest, "why": why} for d, why in item.blocked],
        "freed_bytes": item.freed,
        "freed_exact": graph.exact if graph else True,
    }


def report_record(report: PruneReport, requests: int) -> dict[str, Any]:
    return {
        "applied": report.applied,
        "apps": [app_record(p) for p in report.plans],
        "freed_bytes": report.freed,
        "stopped": report.stopped,
        "reclaim": report.hints(),
        "requests": requests,
    }


def _print(report: PruneReport, requests: int) -> None:
    verb = "freed" if report.applied else "would free"
    for item in report.plans:
        if item.problem or item.graph is None:
            output.stdout.print(
                f"[bold]{escape(item.app)}[/]  {escape(item.image)}  [red]unread[/]", highlight=False
            )
            continue
        graph = item.graph
        kept = sum(1 for v in graph.verdicts if v.kept or v.why == "referrer")
        head = (
            f"[bold]{escape(item.app)}[/]  {escape(item.image)}  keep {kept}, delete"
            f" {len(graph.verdicts) - kept} tags in {len(graph.deletions)} manifests, {verb} {size(item.freed)}"
            + ("" if graph.exact else " at least")
        )
        output.stdout.print(head, highlight=False)
        table = output.table("", "TAG", "WHY", "", box=None, pad_edge=False, show_header=False)
        for v in sorted(graph.verdicts, key=lambda v: (v.kept or v.why == "referrer", v.tag)):
            keep = v.kept or v.why == "referrer"
            table.add_row("  keep" if keep else "  delete", escape(v.tag), str(v.why), escape(v.sentence))
        for d in graph.deletions:
            if not d.tags:
                table.add_row("  delete", escape(d.digest[:19] + "…"), str(d.why), escape(d.sentence))
        for d, why in item.blocked:
            table.add_row(
                "  blocked", escape(", ".join(d.tags) or d.digest[:19]), "changed-since", escape(why)
            )
        output.print_table(table)
    total = f"{verb} {size(report.freed)} in {len(report.plans)} apps ({requests} registry requests)"
    output.stdout.print(total, highlight=False)
    for hint in report.hints() if report.freed else []:
        output.stdout.print(f"space: {escape(hint)}", highlight=False)
    if not report.applied and any(p.graph and p.graph.deletions for p in report.plans):
        output.stdout.print("dry run: nothing was deleted; `tagtrail prune --apply` deletes", highlight=False)


@app.command("prune")
def prune(
    ctx: typer.Context,
    apps: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[APP]...", help="Apps whose images to prune. Default: every app in the deploy files."
        ),
    ] = None,
    delete: Annotated[
        bool,
        typer.Option(
            "--apply", help="Delete what the plan says, one manifest at a time (default: a dry run)."
        ),
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Free registry space without losing any image you may roll back to.

    Plans by default: per app, every tag kept and why (deployed, pinned, rollback-target, newest, too-young,
    not-of-scheme, shares-digest, referenced) and every tag that would be deleted and why (old-build,
    old-other-branch, old-dirty, listed, with-subject), with the bytes it would free. The rules are the
    `retention:` section of tagtrail.yaml; what runs, pins and rollback targets are kept whatever it says:
    from the deploy files and tagtrail.yaml here and at the deploy branch's head, and wherever kubernetes:
    is set, the workloads, their pin annotations and every revision they can roll back to.

    With --apply, each manifest is deleted after the tags are read again, so a build pushed meanwhile, or a
    kept tag moved onto one about to go, is never deleted; every deletion goes to the decision log. A kept
    manifest that cannot be read deletes nothing in its repository. A registry frees the space when it collects
    garbage (docker-registry: `garbage-collect --delete-untagged`); on ghcr.io deletion goes through the
    GitHub Packages API with a token that has delete:packages.
    """
    current = state(ctx)
    config = current.config()
    path = (current.config_path or current.project_root() / "tagtrail.yaml").resolve()
    report, requests = asyncio.run(prune_project(config, path, apps, delete=delete, actor="tagtrail prune"))
    if json:
        output.print_json(report_record(report, requests))
    else:
        _print(report, requests)
    for item in report.plans:
        if item.problem:
            output.error(f"{item.app}: {item.problem}")
    if report.stopped:
        output.error(report.stopped)
        raise typer.Exit(EXIT_ERROR)
    if any(p.problem for p in report.plans):
        raise typer.Exit(EXIT_PARTIAL)
