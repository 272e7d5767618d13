"""`tagtrail base-images`: per app, the base of the build that runs, where its tag points now, and whether
it moved; with --for-build, the base a build of the work tree would record (the generated workflow's step)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tagtrail.adapters import apps as discovery
from tagtrail.adapters.baseimages import AppBase, ResolvedBase, resolve_bases
from tagtrail.adapters.registry import RegistryClient
from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.deploy_cmd import EXIT_PENDING, AppsArgument, JsonOption, _run
from tagtrail.cli.output import escape
from tagtrail.config import Config
from tagtrail.domain.humanize import age
from tagtrail.errors import TagtrailError
from tagtrail.reconcile.bases import base_images

_DELIMITER = "TAGTRAIL_BASE_EOF"  # GitHub's multi-line output form: name<<DELIMITER … DELIMITER


@app.command("base-images")
def base_images_command(
    ctx: typer.Context,
    apps: AppsArgument = None,
    json: JsonOption = False,
    for_build: Annotated[
        bool,
        typer.Option(
            "--for-build",
            help="For one APP: the base its Dockerfile names now, resolved to a digest, as $GITHUB_OUTPUT"
            " lines (name, digest, context, labels, annotations) that the generated workflow builds with.",
        ),
    ] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 2 when an app runs on a moved base (for cron and CI).")
    ] = False,
) -> None:
    """Per app: the base image of the build that runs (its org.opencontainers.image.base.* annotations,
    or the Dockerfile at its commit), the digest that base's tag points to now, whether it moved and
    since when. A base pinned by digest in the Dockerfile moves only by a change of the Dockerfile
    (Dependabot's pull request). One HEAD request per distinct base."""
    current = state(ctx)
    if for_build:
        _for_build(current.config(), current.project_root(), apps or [])
        return
    rows = _run(current, lambda reconciler: base_images(reconciler, apps))
    if json:
        output.print_json([row.as_json() for row in rows])
    else:
        _table(rows)
    if exit_code and any(row.moved for row in rows):
        raise typer.Exit(EXIT_PENDING)


def _table(rows: list[AppBase]) -> None:
    table = output.table("APP", "BASE", "USED", "NOW", "MOVED", box=None, pad_edge=False)
    for row in rows:
        table.add_row(row.app, escape(row.base or "-"), _short(row.used), _short(row.current), _moved(row))
    output.print_table(table)
    for row in rows:
        if row.problem:
            output.warn(f"{row.app}: {row.problem}")


def _short(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def _moved(row: AppBase) -> str:
    if row.scratch:
        return "no (FROM scratch)"
    if row.pinned:
        return "pinned by digest: Dependabot's pull request moves it"
    if row.moved is None:
        return "unknown"
    if not row.moved:
        return "no"
    return f"yes, since {age(row.since)} ago" if row.since else "yes"


def _for_build(config: Config, root: Path, names: list[str]) -> None:
    if len(names) != 1:
        raise TagtrailError("--for-build takes exactly one APP")
    found = {a.name: a for a in discovery.discover(root, config)}
    if names[0] not in found:
        raise TagtrailError(f"no app named '{names[0]}'; apps: {', '.join(found) or 'none'}")

    async def resolve() -> None:
        async with RegistryClient(config.registries) as client:
            resolution = await resolve_bases(client, config, root, [found[names[0]]])
        if resolution.unresolved:  # the build would fail to pull it too: say why, here
            raise TagtrailError(
                f"{names[0]}: its base cannot be resolved ({resolution.unresolved[names[0]]})"
            )
        [base] = resolution.bases.values()
        typer.echo(github_output(base), nl=False)

    asyncio.run(resolve())


def github_output(base: ResolvedBase | None) -> str:
    """$GITHUB_OUTPUT's lines: name, digest and context, and the labels and annotations as multi-line
    values (nothing for FROM scratch, so a scratch image gets no empty base labels)."""
    record = "".join(f"{k}={v}\n" for k, v in base.recorded.labels().items()) if base else ""
    context = base.build_context if base and not base.pinned else ""
    return (
        f"name={base.recorded.name if base else ''}\n"
        f"digest={base.recorded.digest if base else ''}\n"
        f"context={context}\n"
        f"labels<<{_DELIMITER}\n{record}{_DELIMITER}\n"
        f"annotations<<{_DELIMITER}\n{record}{_DELIMITER}\n"
    )
