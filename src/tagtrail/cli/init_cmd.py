"""`tagtrail init`: propose a tagtrail.yaml for the repository, write it, then check it and plan."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.cli import config_cmd, deploy_cmd, output
from tagtrail.cli.app import State
from tagtrail.cli.app import app as root_app
from tagtrail.cli.output import escape
from tagtrail.config import Config, RegistryConfig
from tagtrail.errors import RegistryError, TagtrailError
from tagtrail.features import init as initializer

PROBE_TIMEOUT = 5.0
NEXT_STEPS = (
    ("tagtrail ci github", "write the build workflow: changed apps only, tags of this scheme"),
    ("tagtrail ci dependabot", "security and version updates for every app folder"),
    ("tagtrail serve", "deploy continuously, with a dashboard, webhooks and metrics"),
)


@root_app.command("init")
def init(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the tagtrail.yaml init would write; write nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Replace an existing tagtrail.yaml without asking.")
    ] = False,
) -> None:
    """Write tagtrail.yaml for this repository from what it already says, and explain each choice.

    Apps: the folders with a Dockerfile or Containerfile, plus the shared folders their Dockerfiles COPY
    (what a Makefile copies is not read: it says so). Scheme: the tag template of a docker/metadata-action
    step in .github/workflows (a time zone metadata-action ignores is reported, with the zone meant). Image:
    that step's images: with env, github.repository and the app filled in ({app} anywhere in a path part:
    a matrix key of app folders, an include: list, a reusable workflow's input; vars.* from the deploy files'
    names); several workflows: the one the deploy files confirm; none: the name that explains the most deploy
    file references, else ghcr.io/OWNER/REPO/{app}; plus aliases for the other names the deploy files use. Deploy files: every YAML file naming an app's image, by kind, with its
    references; third-party images are listed and left alone. Branch: the default branch. A file linked out
    of the repository, too large, or YAML over tagtrail's nesting and alias limits is skipped, one line each.

    The file goes at the top of the git repository. Then init runs `tagtrail config check`, and `tagtrail
    plan` when the registry answers. An existing tagtrail.yaml is replaced only after asking, or with --yes;
    with no terminal to ask on and no --yes, init stops with an error and changes nothing.
    """
    proposal = initializer.survey(GitRepo.discover(Path.cwd()).root)
    path = initializer.config_path(proposal)
    if dry_run:
        _summary(proposal, to_stderr=True)
        sys.stdout.write(proposal.text)
        return
    _summary(proposal, to_stderr=False)
    if not _may_write(path, initializer.existing_config(proposal), proposal.text, yes):
        output.stdout.print(f"kept {escape(str(path))} as it was", highlight=False)
        return
    written = initializer.write_config(proposal)
    done = "wrote" if written else "unchanged:"
    output.stdout.print(f"[green]✓[/] {done} {escape(str(path))}", highlight=False)
    _check_and_plan(ctx, path, proposal)
    output.stdout.print("\nnext:", highlight=False)
    for command, what in NEXT_STEPS:
        output.stdout.print(f"  {command:<24} {what}", highlight=False)


def _may_write(path: Path, existing: str | None, text: str, yes: bool) -> bool:
    if not path.exists() or yes or existing == text:
        return True
    if not sys.stdin.isatty():
        raise TagtrailError(
            f"{path} exists; run `tagtrail init --yes` to replace it, or --dry-run to see what init would write"
        )
    return typer.confirm(f"{path} exists. Replace it?", default=False)


def _summary(proposal: initializer.Proposal, *, to_stderr: bool) -> None:
    """What init found and chose, one fact a line, then what it could not decide and what to do."""
    rows: list[tuple[str, str]] = []
    names = ", ".join(a.name for a in proposal.apps) or "none"
    rows.append(("apps", f"{len(proposal.apps)} below {proposal.found.root}/: {names}"))
    rows += [
        ("", f"{app} also rebuilds on {', '.join(i.value for i in items)}")
        for app, items in sorted(proposal.found.inputs.items())
    ]
    rows.append(("scheme", f"{proposal.scheme.scheme}  ({proposal.scheme.source})"))
    rows.append(("image", f"{proposal.image.value}  ({proposal.image.why})"))
    rows += [("alias", f"{alias.value}  ({alias.why})") for alias in proposal.aliases]
    rows.append(("deploys", f"builds of {proposal.branch.value}  ({proposal.branch.why})"))
    for file in proposal.files:
        count = f"{len(file.refs)} reference" + ("s" if len(file.refs) != 1 else "")
        rows.append(("file", f"{file.path}: {file.kind}, {count}"))
        rows += [("", f"left alone: {m.text} (line {m.line})") for m in file.third_party]
    rows += [
        ("applied by", f"the Pulumi Stack {s.namespace}/{s.name} ({s.where}): proposed, commented out")
        for s in proposal.stacks
    ]
    if proposal.files:
        rows.append(("references", ", ".join(f"{app} {n}" for app, n in proposal.references().items())))
    lines = [f"{key:<11} {value}".rstrip() for key, value in rows]
    lines += proposal.skipped
    lines += [f"note: {item}" for item in proposal.scheme.ignored]
    lines += [f"to do: {item}" for item in proposal.todo]
    stream = sys.stderr if to_stderr else sys.stdout
    stream.write("\n".join(lines) + "\n")
    stream.flush()


def _check_and_plan(ctx: typer.Context, path: Path, proposal: initializer.Proposal) -> None:
    """`tagtrail config check`, then `tagtrail plan` when there are deploy files and the registry answers.
    The one place init runs other commands: they read the file just written, as a user's next command would."""
    root = ctx.find_root()
    root.obj = State(config_path=path, verbose=root.obj.verbose if isinstance(root.obj, State) else 0)
    output.stdout.print("\n$ tagtrail config check", highlight=False)
    config_cmd.check(ctx, json=False)
    if not proposal.files:
        output.stdout.print("no deploy files yet: `tagtrail plan` has nothing to read", highlight=False)
        return
    config = root.obj.config()
    problem = _unreachable(config)
    if problem is not None:
        output.stdout.print(
            f"not planning: {escape(problem)}; run `tagtrail plan` once it answers", highlight=False
        )
        return
    output.stdout.print("\n$ tagtrail plan", highlight=False)
    try:
        deploy_cmd.plan(ctx, apps=None, json=False, exit_code=False)
    except TagtrailError as exc:  # the file is written and valid; what plan needs besides is for the user
        output.warn(f"tagtrail plan: {exc}")


def _unreachable(config: Config) -> str | None:
    """Why the registry of image: cannot be read now (None when it answers), asked once, briefly."""
    host = ImageRef.parse(config.image_for("app")).registry
    settings = {h: c.model_copy(update={"timeout": PROBE_TIMEOUT}) for h, c in config.registries.items()}
    settings.setdefault(host, RegistryConfig(timeout=PROBE_TIMEOUT))

    async def ping() -> None:
        async with RegistryClient(settings, retries=0) as client:
            await client.ping(host)

    try:
        asyncio.run(ping())
    except RegistryError as exc:
        return str(exc)
    return None
