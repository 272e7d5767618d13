"""`tagtrail apps`, `tagtrail ci github|dependabot` and `tagtrail build`: the build side."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, get_args

import typer

from tagtrail.adapters import apps as app_discovery
from tagtrail.adapters import generated
from tagtrail.adapters.apps import App
from tagtrail.adapters.baseimages import Resolution, resolve_bases
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import CredentialResolver, ImageRef, RegistryClient
from tagtrail.cli import output
from tagtrail.cli.app import State, app, state
from tagtrail.cli.output import escape
from tagtrail.config import Config
from tagtrail.errors import TagtrailError
from tagtrail.features import build as builds
from tagtrail.features import ci

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

ci_app = typer.Typer(
    help="Write CI config from tagtrail.yaml: the GitHub build workflow, dependabot.yml.",
    no_args_is_help=True,
)
app.add_typer(ci_app, name="ci")


def _repo(current: State) -> GitRepo:
    return GitRepo.discover(current.project_root())


def _report(result: generated.WriteResult, force_hint: bool = True) -> None:
    if result.outcome == "refused":
        output.stdout.print(result.diff, highlight=False, markup=False, end="")
        raise TagtrailError(
            f"{result.path} was edited by hand (or not written by tagtrail); the diff above is what would change."
            " Keep your edits, or pass --force to replace the file"
        )
    output.stderr.print(f"{result.path}: {result.outcome}", highlight=False)


@ci_app.command("github")
def github(
    ctx: typer.Context,
    output_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write the workflow.")] = Path(
        ".github/workflows/build.yml"
    ),
    platforms: Annotated[
        str | None,
        typer.Option(help="Build for these platforms, e.g. linux/amd64,linux/arm64 (QEMU is set up)."),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            metavar="CRON",
            help="Also rebuild every app on this schedule (e.g. '17 4 * * 1'), for base-image fixes.",
        ),
    ] = None,
    version_tags: Annotated[
        bool,
        typer.Option(
            "--version-tags", help="Refer to actions by version tag (@v4) instead of full commit sha."
        ),
    ] = False,
    install: Annotated[
        str,
        typer.Option(help="What `pip install` gets tagtrail from in CI (a version, a path or a git URL)."),
    ] = ci.WorkflowOptions().install,
    sign: Annotated[
        bool,
        typer.Option(
            "--sign",
            help="Sign each image with cosign, the key from the COSIGN_PRIVATE_KEY (and COSIGN_PASSWORD) secret.",
        ),
    ] = False,
    attest: Annotated[
        bool,
        typer.Option(
            "--attest",
            help="Attest each image's build provenance, keyless (always when deploy.verify.github is set).",
        ),
    ] = False,
    force: Annotated[bool, typer.Option(help="Replace the file even if it was edited by hand.")] = False,
) -> None:
    """Write the GitHub Actions workflow that builds and pushes every changed app: a discover job runs
    `tagtrail apps --changed` on the pushed range, a build job per app tags with the scheme through
    docker/metadata-action and builds with docker/build-push-action. Pushes that change only the deploy
    files build nothing. Re-running on an unchanged repository rewrites nothing."""
    current = state(ctx)
    config = current.config()
    if "${{" in config.scheme:
        raise TagtrailError("the scheme contains '${{', which GitHub Actions would read as an expression")
    options = ci.WorkflowOptions(
        platforms=tuple(p.strip() for p in platforms.split(",") if p.strip()) if platforms else (),
        schedule=schedule,
        pin=not version_tags,
        install=install,
        sign=sign,
        attest=attest,
    )
    content = generated.render(ci.WORKFLOW_HEADER, ci.workflow(config, options))
    target = output_path if output_path.is_absolute() else current.project_root() / output_path
    _report(generated.write(target, content, force=force))


@ci_app.command("dependabot")
def dependabot(
    ctx: typer.Context,
    output_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file.")] = Path(
        ".github/dependabot.yml"
    ),
    force: Annotated[bool, typer.Option(help="Replace the file even if it was edited by hand.")] = False,
) -> None:
    """Write dependabot.yml: for each app folder an entry per ecosystem found there (docker, pip, uv,
    gomod, npm, …) plus github-actions, weekly, minor and patch updates grouped. Security updates keep
    their own limit. Re-running on an unchanged repository rewrites nothing."""
    current = state(ctx)
    root = current.project_root()
    found = app_discovery.discover(root, current.config())
    content = generated.render(ci.DEPENDABOT_HEADER, ci.dependabot(root, found))
    target = output_path if output_path.is_absolute() else root / output_path
    _report(generated.write(target, content, force=force))


@app.command("build")
def build(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[APP]...", help="Apps to build. Default: every app.")
    ] = None,
    push: Annotated[bool, typer.Option(help="Push each image to its registry and print its digest.")] = False,
    builder: Annotated[
        str | None,
        typer.Option(help=f"One of {', '.join(builds.BUILDERS)}. Default: the first that works here."),
    ] = None,
    platform: Annotated[str | None, typer.Option(help="Platforms, e.g. linux/amd64,linux/arm64.")] = None,
    allow_dirty: Annotated[
        bool, typer.Option(help="Build despite uncommitted files; the tag gets -dirty and is never deployed.")
    ] = False,
    build_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--build-arg",
            metavar="KEY=VALUE",
            help="A build argument, as docker build takes it (also read for the base: ARG before FROM).",
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            help="The branch to put in the tag. Default: the branch checked out (a detached HEAD needs it)."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Build app images from this work tree, tagged by the scheme from git HEAD (as CI tags them) and
    labelled with the commit, the repository, the time, the version and the app. Refuses when an app's
    inputs have uncommitted or untracked files. The exit code says whether every app succeeded."""
    current = state(ctx)
    config = current.config()
    root = current.project_root()
    every = app_discovery.discover(root, config)
    chosen = _select(every, names or [])
    if builder is not None and builder not in get_args(builds.BuilderName):
        raise TagtrailError(f"--builder '{builder}': use one of {', '.join(builds.BUILDERS)}")
    platforms = ci.check_platforms(tuple(p.strip() for p in (platform or "").split(",") if p.strip()))
    plans = builds.plan_builds(
        _repo(current), config, chosen, allow_dirty=allow_dirty, branch=branch, now=datetime.now(UTC)
    )
    args = _build_args(build_arg or [])
    tool = builds.find_builder(builder)  # type: ignore[arg-type]
    resolution = asyncio.run(_bases(config, root, chosen, dict(args)))
    for app_name, why in resolution.unresolved.items():
        output.warn(f"{app_name}: its base cannot be resolved ({why}): built without a base record")
    plans = [replace(plan, base=resolution.bases[plan.app.name]) for plan in plans]
    credentials = CredentialResolver({h: c.credentials for h, c in config.registries.items()})
    logs = Path(tempfile.mkdtemp(prefix="tagtrail-build-logs-"))
    results: list[builds.BuildResult] = []
    with tempfile.TemporaryDirectory(prefix="tagtrail-build-") as private:
        for number, plan in enumerate(plans, start=1):
            settings = config.registries.get(ImageRef.parse(plan.app.image).registry)
            auth = builds.registry_auth_file(credentials, plan.app.image, Path(private)) if push else None
            options = builds.BuildOptions(push, platforms, bool(settings and settings.insecure), auth, args)
            dirty = " [yellow](dirty)[/]" if plan.dirty else ""
            output.stderr.print(
                f"building {plan.app.name} ({number}/{len(plans)}) as {escape(plan.reference)}{dirty} with {tool.name}…"
            )
            results.append(builds.build_one(tool, root, plan, options, logs))
    _show_results(results, json)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _build_args(given: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in given:
        key, eq, value = item.partition("=")
        if not eq or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise TagtrailError(f"--build-arg '{item}': write KEY=VALUE, KEY a variable name")
        pairs.append((key, value))
    return tuple(pairs)


async def _bases(config: Config, root: Path, chosen: list[App], args: dict[str, str]) -> Resolution:
    """Each app's base, resolved to the digest its tag points to now (one HEAD per distinct base)."""
    async with RegistryClient(config.registries) as client:
        return await resolve_bases(client, config, root, chosen, args)


def _select(every: list[App], names: list[str]) -> list[App]:
    if not names:
        if not every:
            raise TagtrailError("there are no apps to build (see `tagtrail apps`)")
        return every
    by_name = {a.name: a for a in every}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise TagtrailError(f"no app named '{unknown[0]}'; apps: {', '.join(by_name) or 'none'}")
    return [by_name[n] for n in names]


def _show_results(results: list[builds.BuildResult], json: bool) -> None:
    if json:
        output.print_json(
            [
                {
                    "app": r.app,
                    "reference": r.reference,
                    "ok": r.ok,
                    "pushed": r.pushed,
                    "digest": r.digest,
                    "error": r.error,
                    "log": str(r.log) if r.log else None,
                }
                for r in results
            ]
        )
        return
    table = output.table("APP", "IMAGE", "RESULT", box=None, pad_edge=False)
    for r in results:
        if r.ok:
            shown = f"{r.reference}@{r.digest}" if r.digest else r.reference
            table.add_row(r.app, escape(shown), "pushed" if r.pushed else "built")
        else:
            table.add_row(
                r.app, escape(r.reference), f"[red]failed[/]: {escape(r.error or '')} (log: {r.log})"
            )
    output.print_table(table)
    for r in results:
        if not r.ok and r.log and r.log.exists():
            tail = r.log.read_text(errors="replace").splitlines()[-12:]
            output.stderr.print(f"--- last lines of {r.app}'s build ({r.log}) ---", highlight=False)
            output.stderr.print("\n".join(tail), highlight=False, markup=False)
