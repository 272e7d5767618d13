"""`tagtrail demo`: the whole job on a local default, narrated."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown

from tagtrail.cli import output
from tagtrail.cli.app import app
from tagtrail.errors import TagtrailError


def _say(text: str) -> None:
    if text.startswith("## "):
        output.stdout.print()
        output.stdout.print(Markdown(text.splitlines()[0]))
        text = "\n".join(text.splitlines()[1:])
    if text:
        output.stdout.print(text, highlight=False, markup=False)


def _load_demo(environments: bool = False) -> Callable[..., Any]:
    """The demo's scaffolding is a package beside the product's: present in a clone's install, absent from
    a slim one; loaded only here, so no other command pays for it."""
    try:
        module = importlib.import_module("tagtrail_demo.lanes" if environments else "tagtrail_demo.run")
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("tagtrail_demo"):
            raise
        raise TagtrailError(
            "tagtrail demo needs the tagtrail_demo package, which this install does not have:"
            " install tagtrail from a clone (pip install -e .) to run the demo"
        ) from None
    return module.run_lanes_demo if environments else module.run_demo  # type: ignore[no-any-return]


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
    environments: Annotated[
        bool,
        typer.Option(
            "--environments",
            help="Show environments instead: a build soaks in staging and is promoted to prod; a bad one is"
            " rolled back in staging and stops there.",
        ),
    ] = False,
) -> None:
    """Run tagtrail end to end on this machine: a real registry on loopback, a sample monorepo with a git
    remote, builds on main and a feature branch, then plan, deploy, status, a new build and its deploy, a
    rollback, unpin and history. Needs docker-registry and git; builds with buildah when it works here."""
    run_demo = _load_demo(environments)
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
