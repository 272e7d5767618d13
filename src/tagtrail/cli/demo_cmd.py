"""`tagtrail demo`: the whole job on a local default, narrated."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown

from tagtrail.cli import output
from tagtrail.cli.app import app
from tagtrail.demo import run_demo


def _say(text: str) -> None:
    if text.startswith("## "):
        output.stdout.print()
        output.stdout.print(Markdown(text.splitlines()[0]))
        text = "\n".join(text.splitlines()[1:])
    if text:
        output.stdout.print(text, highlight=False, markup=False)


@app.command()
def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the registry storage and the sample monorepo. Default: a new temp folder."
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option(help="Leave the registry running and the files in place afterwards.")
    ] = False,
) -> None:
    """Run tagtrail end to end on this machine: a real registry on loopback, a sample monorepo with a git
    remote, builds on main and a feature branch, then plan, deploy, status, a new build and its deploy, a
    rollback, unpin and history. Needs docker-registry and git; builds with buildah when it works here."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_demo(workdir.resolve(), _say, keep=keep)
    elif keep:
        result = run_demo(Path(tempfile.mkdtemp(prefix="tagtrail-demo-")), _say, keep=True)
    else:
        with tempfile.TemporaryDirectory(prefix="tagtrail-demo-") as folder:
            result = run_demo(Path(folder), _say)
    output.stdout.print(
        f"\n[green]✓[/] demo done: images built with {result.builder} and pushed to {result.registry};"
        f" {result.deploys} deploy commits made and pushed, each one command.",
        highlight=False,
    )
