"""`tagtrail registry tags|digest|inspect`: what a registry holds, read the way tagtrail reads it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer

from tagtrail.adapters.registry import ImageRef, InvalidReference, Platform, RegistryClient
from tagtrail.adapters.registry.media import REVISION_LABEL, SOURCE_LABEL
from tagtrail.cli import output
from tagtrail.cli.app import State, app, state
from tagtrail.cli.output import escape
from tagtrail.cli.tag import tag_record
from tagtrail.config import Config, RegistryConfig
from tagtrail.domain.humanize import age
from tagtrail.domain.scheme import ParsedTag
from tagtrail.errors import TagtrailError

registry_app = typer.Typer(
    help="Read a registry: tags (parsed with the scheme), a tag's digest, an image's platforms and labels.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")

T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (with the requests spent).")]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure", help="Use plain HTTP for this image's registry (for registries not in tagtrail.yaml)."
    ),
]


def _resolve(
    current: State, image: str, insecure: bool
) -> tuple[ImageRef, dict[str, RegistryConfig], Config | None]:
    """An image reference, or an app name expanded by the `image` template when tagtrail.yaml is found
    (so with a config, a Docker Hub image needs its full name: docker.io/library/nginx)."""
    config = current.optional_config()
    text = image
    if config is not None and "/" not in image and "@" not in image:
        name, _, tag = image.partition(":")
        text = config.image_for(name) + (f":{tag}" if tag else "")
    try:
        ref = ImageRef.parse(text)
    except InvalidReference as exc:
        raise TagtrailError(str(exc)) from None
    registries = dict(config.registries) if config else {}
    if insecure:
        registries[ref.registry] = registries.get(ref.registry, RegistryConfig()).model_copy(
            update={"insecure": True}
        )
    return ref, registries, config


def _run(
    registries: dict[str, RegistryConfig], job: Callable[[RegistryClient], Awaitable[T]]
) -> tuple[T, dict[str, dict[str, int]]]:
    async def main() -> tuple[T, dict[str, dict[str, int]]]:
        async with RegistryClient(registries) as client:
            result = await job(client)
            return result, client.stats.snapshot()

    return asyncio.run(main())


def _needs_tag(ref: ImageRef) -> None:
    if not ref.tag and not ref.digest:
        raise TagtrailError(f"'{ref}' names no tag or digest; write IMAGE:TAG or IMAGE@sha256:…")


def _age(moment: datetime | None) -> str:
    return age(moment, empty="-")


@registry_app.command("tags")
def tags(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Argument(help="Image repository (ghcr.io/o/r/web), or an app name from tagtrail.yaml.")
    ],
    scheme: Annotated[
        bool, typer.Option("--scheme", help="Only tags of the configured scheme, parsed, newest first.")
    ] = False,
    branch: Annotated[str | None, typer.Option(help="With --scheme: only tags of this branch.")] = None,
    insecure: InsecureOption = False,
    json: JsonOption = False,
) -> None:
    """List every tag of a repository (all pages). With --scheme, read each with the tag scheme: branch,
    commit and time, newest first; tags of other schemes are counted, not shown."""
    current = state(ctx)
    ref, registries, config = _resolve(current, image, insecure)
    # Without a config there is no scheme: say so before spending any request.
    compiled = (config or current.config()).tag_scheme if scheme or branch else None
    found, requests = _run(registries, lambda client: client.list_tags(ref))
    if compiled is None:
        names = sorted(found)
        if json:
            output.print_json({"image": ref.name, "tags": names, "requests": requests})
        else:
            for name in names:
                typer.echo(name)
        return
    token = compiled.branch_token(branch) if branch else None
    parsed = [p for p in (compiled.parse(t) for t in found) if isinstance(p, ParsedTag)]
    shown = [p for p in parsed if token is None or p.branch == token]
    shown.sort(
        key=lambda p: (max(p.instants) if p.instants else datetime.min.replace(tzinfo=UTC), p.tag),
        reverse=True,
    )
    ignored = len(found) - len(parsed)
    if json:
        output.print_json(
            {
                "image": ref.name,
                "tags": [tag_record(p) for p in shown],
                "other_scheme": ignored,
                "other_branch": len(parsed) - len(shown),
                "requests": requests,
            }
        )
        return
    table = output.table("TAG", "BRANCH", "SHA", "TIME (UTC)", "AGE", box=None, pad_edge=False)
    for p in shown:
        when = " or ".join(f"{i:%Y-%m-%d %H:%M:%S}" for i in p.instants) or "-"
        table.add_row(p.tag, p.branch, p.sha, when, _age(max(p.instants) if p.instants else None))
    output.print_table(table)
    others = f"; {len(parsed) - len(shown)} of other branches" if token else ""
    output.stderr.print(f"{len(shown)} shown, {ignored} not of the scheme{others}", highlight=False)


@registry_app.command("digest")
def digest(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="IMAGE:TAG (or an app name with :TAG).")],
    insecure: InsecureOption = False,
    json: JsonOption = False,
) -> None:
    """Print the digest a tag points at (one HEAD request): what to pin as IMAGE:TAG@sha256:…"""
    ref, registries, _ = _resolve(state(ctx), image, insecure)
    _needs_tag(ref)
    head, requests = _run(registries, lambda client: client.head(ref))
    if json:
        output.print_json(
            {
                "image": ref.name,
                "tag": ref.tag,
                "digest": head.digest,
                "media_type": head.media_type,
                "size": head.size,
                "requests": requests,
            }
        )
    else:
        typer.echo(head.digest)


@registry_app.command("inspect")
def inspect(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="IMAGE:TAG or IMAGE@sha256:… (or an app name with :TAG).")],
    platform: Annotated[
        str | None,
        typer.Option(help="For a multi-arch image: the platform whose config to read (default linux/amd64)."),
    ] = None,
    insecure: InsecureOption = False,
    json: JsonOption = False,
) -> None:
    """Show an image: digest, media type, platforms, when it was created, its labels, and the commit it was
    built from (the OCI revision label, else the sha in its tag)."""
    current = state(ctx)
    ref, registries, config = _resolve(current, image, insecure)
    _needs_tag(ref)
    try:
        wanted = Platform.parse(platform) if platform else None
    except ValueError as exc:
        raise TagtrailError(str(exc)) from None
    seen, requests = _run(registries, lambda client: client.inspect(ref, wanted))
    commit = seen.config.revision
    if commit is None and config is not None and ref.tag:
        parsed = config.tag_scheme.parse(ref.tag)
        commit = parsed.sha if isinstance(parsed, ParsedTag) else None
    if json:
        output.print_json(
            {
                "image": ref.name,
                "tag": ref.tag,
                "digest": seen.digest,
                "media_type": seen.media_type,
                "platforms": [str(p) for p in seen.platforms],
                "created": output.iso(seen.config.created),
                "os": seen.config.os,
                "architecture": seen.config.architecture,
                "commit": commit,
                "source": seen.config.labels.get(SOURCE_LABEL),
                "labels": seen.config.labels,
                "requests": requests,
            }
        )
        return
    table = output.table(box=None, show_header=False, pad_edge=False)
    table.add_row("image", escape(str(ref)))
    table.add_row("digest", seen.digest)
    table.add_row("media type", seen.media_type)
    table.add_row(
        "platforms",
        ", ".join(str(p) for p in seen.platforms) or f"{seen.config.os}/{seen.config.architecture}",
    )
    table.add_row("created", f"{seen.config.created:%Y-%m-%d %H:%M:%S} UTC" if seen.config.created else "-")
    table.add_row(
        "commit", escape(commit or "-") + ("" if seen.config.revision or not commit else " (from the tag)")
    )
    for key, value in sorted(seen.config.labels.items()):
        if key != REVISION_LABEL:
            table.add_row(escape(key), escape(value))
    output.print_table(table)
