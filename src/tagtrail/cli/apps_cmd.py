"""`tagtrail apps`: the apps, or those a range of commits changed (a GitHub Actions matrix). Apart from
`build`, so that this command, run in every CI build, does not import the registry client."""

from __future__ import annotations

from typing import Annotated

import typer

from tagtrail.adapters import apps as app_discovery
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.output import escape


@app.command("apps")
def apps(
    ctx: typer.Context,
    changed: Annotated[
        str | None,
        typer.Option(
            metavar="BASE",
            help="Only apps whose inputs changed since BASE (a commit; unknown or all-zero: every app).",
        ),
    ] = None,
    head: Annotated[str, typer.Option(metavar="REV", help="With --changed: the end of the range.")] = "HEAD",
    json: Annotated[
        bool, typer.Option("--json", help='Print {"include": […]}, as a GitHub Actions matrix takes it.')
    ] = False,
) -> None:
    """List the apps: every folder below apps.root with a Dockerfile or Containerfile, minus apps.exclude.
    With --changed BASE, only those a push from BASE to HEAD changed (their folder, Dockerfile or
    apps.inputs), every app when the build settings of tagtrail.yaml changed or BASE is unknown."""
    current = state(ctx)
    config = current.config()
    reason = None
    if changed is not None:
        found, reason = app_discovery.changed(GitRepo.discover(current.project_root()), config, changed, head)
    else:
        found = app_discovery.discover(current.project_root(), config)
    if json:
        entries = [
            a.matrix_entry() | ({} if changed is not None else {"inputs": list(a.inputs)}) for a in found
        ]
        output.print_json({"include": entries})
    else:
        table = output.table("APP", "CONTEXT", "DOCKERFILE", "IMAGE", "MORE INPUTS", box=None, pad_edge=False)
        for a in found:
            table.add_row(a.name, a.context, a.dockerfile, escape(a.image), ", ".join(a.inputs) or "-")
        if found:
            output.print_table(table)
        else:
            output.stderr.print(
                "no apps" + (" changed" if changed is not None else f" below {config.apps.root}/")
            )
    if reason and not json:
        output.stderr.print(reason, highlight=False)
