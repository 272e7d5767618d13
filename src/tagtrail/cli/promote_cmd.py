"""`tagtrail promote`: a build that ran well in one environment, deployed to the next by a person."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tagtrail import reconcile
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.cluster import written
from tagtrail.cli.lanes import run_one
from tagtrail.config.environments import names
from tagtrail.errors import GitError, TagtrailError


@app.command("promote")
def promote(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    build: Annotated[
        str | None,
        typer.Argument(
            metavar="[BUILD]", help="The tag to promote. Default: what the environment before runs."
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="ENV", help="The environment to promote to. Default: the only one with from:."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Promote a build whose gate is closed; recorded as forced, with --why."),
    ] = False,
    why: Annotated[str | None, typer.Option("--why", metavar="TEXT", help="Why a forced promotion.")] = None,
) -> None:
    """Deploy BUILD of APP to an environment that takes builds from another (from:), once it ran well
    there: the same digest, rolled out, soaked, not rolled back. A manual gate (approval: manual) opens
    only this way. The commit names the environment it came from and the evidence."""
    current = state(ctx)
    config = current.config()
    gated = [
        name
        for name in names(config)
        if config.environments.get(name) and config.environments[name].take_from
    ]
    if to is None and len(gated) != 1:
        choices = ", ".join(gated) or "none"
        raise TagtrailError(
            f"say which environment to promote to with --to ENV (environments with from: {choices})"
        )
    if why is not None and not force:
        raise TagtrailError("--why goes with --force: a promotion through an open gate needs no reason")
    actor = f"tagtrail promote ({_who(current.project_root())})"
    report = run_one(
        current,
        lambda r: reconcile.promote(r, app_name, build, actor=actor, force=force, why=why),
        to or gated[0],
    )
    where = to or gated[0]
    if report.commit is None:
        output.stderr.print(f"{app_name}: nothing to promote to {where}, it runs that build", highlight=False)
        return
    output.stderr.print(
        f"[green]✓[/] {app_name} promoted to {where}: {written(report.applied)}", highlight=False
    )


def _who(root: Path) -> str:
    """Who promotes: git's identity here, else $USER."""
    try:
        found = GitRepo.discover(root).identity()
    except GitError:
        found = None
    if found is not None:
        return f"{found[0]} <{found[1]}>"
    return os.environ.get("USER") or "unknown"
