"""`tagtrail config check` and `tagtrail config schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.output import escape
from tagtrail.config import Config
from tagtrail.config.deployfiles import deploy_files
from tagtrail.config.docs import json_schema, markdown_table, settings
from tagtrail.config.environments import names, view
from tagtrail.domain.scheme import Rejected
from tagtrail.errors import ConfigError, GitError

config_app = typer.Typer(help="Check tagtrail.yaml, or show every setting it takes.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def config_warnings(config: Config) -> list[str]:
    """Things that are valid but probably not meant."""
    found = []
    for app_name, tag in config.deploy.pins.items():
        parsed = config.tag_scheme.parse(tag)
        if isinstance(parsed, Rejected):
            found.append(f"deploy.pins.{app_name}: '{tag}' {parsed.reason}")
    return found


def check_deploy_files(config: Config, folder: Path) -> None:
    """deploy.git.files (each environment's) against the repository tagtrail.yaml is in (a deploy.git.url
    clone is checked by the commands that make it): an entry that matches no file is a ConfigError at its
    line."""
    for lane in names(config):
        seen = view(config, lane)
        if seen.deploy.git is None or seen.deploy.git.url:
            continue
        try:
            root = GitRepo.discover(folder).root
        except GitError:  # not in a repository: every command that reads the files says so
            return
        deploy_files(seen, root, "this repository")


@config_app.command("check")
def check(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", help="Print the result (and the errors) as JSON.")] = False,
) -> None:
    """Validate tagtrail.yaml: every problem is printed as file:line:column: key: what is wrong. Each of
    deploy.git.files (a path or a glob) must match a file in this repository."""
    current = state(ctx)
    try:
        config = current.config()
        check_deploy_files(config, current.project_root())
    except ConfigError as exc:
        if not json:
            raise
        output.print_json({"valid": False, "errors": [p.__dict__ for p in exc.problems]})
        raise typer.Exit(1) from None
    warnings = config_warnings(config)
    if json:
        output.print_json(
            {
                "valid": True,
                "path": str(current.config_path),
                "warnings": warnings,
                "config": config.model_dump(mode="json"),
            }
        )
        return
    for warning in warnings:
        output.warn(warning)
    branches = ", ".join(config.deploy.branches)
    output.stdout.print(f"[green]✓[/] {escape(str(current.config_path))} is valid", highlight=False)
    table = output.table(box=None, show_header=False, pad_edge=False)
    table.add_row("scheme", escape(config.scheme))
    table.add_row("example tag", config.tag_scheme.example)
    table.add_row("image", escape(config.image))
    table.add_row("deploys", f"tags of {escape(branches)}")
    table.add_row("pins", ", ".join(f"{a}={t}" for a, t in config.deploy.pins.items()) or "none")
    output.print_table(table)


@config_app.command("schema")
def schema(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="A table of every setting (as in the README) instead of JSON.")
    ] = False,
    table: Annotated[
        bool, typer.Option("--table", help="A table of every setting for the terminal.")
    ] = False,
) -> None:
    """Print the JSON schema of tagtrail.yaml, each field with its one-line description (editors such as
    VS Code's YAML extension take it for completion and checking)."""
    if markdown:
        typer.echo(markdown_table(), nl=False)
    elif table:
        listing = output.table("KEY", "TYPE", "DEFAULT", "WHAT IT DOES", box=None, pad_edge=False)
        for setting in settings():
            listing.add_row(setting.key, setting.type, setting.default.strip("`"), setting.description)
        output.print_table(listing)
    else:
        output.print_json(json_schema())
