"""`tagtrail tag`: the tag for a commit, and `tagtrail tag parse`: what tags say."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.output import escape
from tagtrail.domain.scheme import ParsedTag, Rejected, Scheme
from tagtrail.errors import GitError, TagtrailError

tag_app = typer.Typer(no_args_is_help=False)
app.add_typer(tag_app, name="tag")

SchemeOption = Annotated[
    str | None,
    typer.Option(
        "--scheme",
        metavar="TEMPLATE",
        show_default=False,
        help="Use this template instead of the one in tagtrail.yaml (no config needed then).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _scheme(ctx: typer.Context, template: str | None) -> Scheme:
    if template is not None:
        return Scheme.compile(template)
    return state(ctx).config().tag_scheme


def _parse_time(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TagtrailError(f"--time '{text}' is not an ISO 8601 time such as 2024-02-18T10:15:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _branch_from_ci() -> str | None:
    """The branch a CI run builds when the checkout is detached (GitHub Actions checks out a sha)."""
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return None


@tag_app.callback(invoke_without_command=True)
def tag(
    ctx: typer.Context,
    branch: Annotated[str | None, typer.Option(help="Branch name. Default: the branch checked out.")] = None,
    sha: Annotated[str | None, typer.Option(help="Commit sha. Default: HEAD.")] = None,
    time: Annotated[
        str | None,
        typer.Option(
            help="ISO 8601 time (UTC if no offset), or 'now'. Default: now for {{date}}, the commit"
            " time for {{commit_date}}."
        ),
    ] = None,
    repo: Annotated[
        Path | None, typer.Option(help="Git repository to read. Default: the one holding tagtrail.yaml.")
    ] = None,
    scheme: SchemeOption = None,
    json: JsonOption = False,
) -> None:
    """Print the tag the scheme gives HEAD (or --branch/--sha/--time), or read tags back with `tag parse`.

    The tag is the one docker/metadata-action gives for the same branch, commit and time, so a laptop build
    and a CI build of one commit are named alike: `docker build -t ghcr.io/o/r/web:$(tagtrail tag) apps/web`
    """
    if ctx.invoked_subcommand is not None:
        return
    compiled = _scheme(ctx, scheme)
    git: GitRepo | None = None

    def repository() -> GitRepo:
        nonlocal git
        if git is None:
            start = repo or (state(ctx).project_root() if scheme is None else Path.cwd())
            git = GitRepo.discover(start)
        return git

    branch = branch or repository().current_branch() or _branch_from_ci()
    if branch is None:
        raise GitError("HEAD is detached, so there is no branch to put in the tag; pass --branch NAME")
    commit = sha or repository().head_sha()
    moment = _parse_time(time) if time else datetime.now(UTC)
    commit_time = None
    if compiled.time_source == "commit_date":
        commit_time = moment if time else repository().commit_time(commit)
    result = compiled.format(branch=branch, sha=commit, time=moment, commit_time=commit_time)
    if json:
        output.print_json(
            {
                "tag": result,
                "branch": branch,
                "sha": commit,
                "time": output.iso(commit_time or moment),
                "scheme": compiled.template,
            }
        )
    else:
        typer.echo(result)


def tag_record(result: ParsedTag | Rejected) -> dict[str, object]:
    """One tag as `tag parse --json` shows it."""
    if isinstance(result, Rejected):
        return {
            "tag": result.tag,
            "matches": False,
            "branch": None,
            "sha": None,
            "time": None,
            "ambiguous": False,
            "instants": [],
            "reason": result.reason,
            "code": result.code,
        }
    return {
        "tag": result.tag,
        "matches": True,
        "branch": result.branch,
        "sha": result.sha,
        "time": output.iso(result.time),
        "ambiguous": result.ambiguous,
        "instants": [output.iso(i) for i in result.instants],
        "reason": "local time falls in a DST overlap: two instants" if result.ambiguous else None,
        "code": None,
    }


@tag_app.command("parse")
def parse(
    ctx: typer.Context,
    tags: Annotated[list[str], typer.Argument(help="Tags to read, e.g. main.20251014-051038.185c95c.")],
    scheme: SchemeOption = None,
    json: JsonOption = False,
) -> None:
    """Read tags with the scheme: branch, commit and time (UTC) of each, or why a tag is not of the
    scheme. Exits 1 when any tag does not match, so it can guard a script."""
    compiled = _scheme(ctx, scheme)
    results = [compiled.parse(t) for t in tags]
    if json:
        output.print_json([tag_record(r) for r in results])
    else:
        table = output.table("TAG", "BRANCH", "SHA", "TIME (UTC)", "NOTE", box=None, pad_edge=False)
        for r in results:
            if isinstance(r, Rejected):
                table.add_row(escape(r.tag), "-", "-", "-", f"[red]not of the scheme:[/] {escape(r.reason)}")
            else:
                when = " or ".join(f"{i:%Y-%m-%d %H:%M:%S}" for i in r.instants) or "-"
                note = "ambiguous: DST overlap" if r.ambiguous else ""
                table.add_row(r.tag, r.branch, r.sha, when, note)
        output.print_table(table)
    if any(isinstance(r, Rejected) for r in results):
        raise typer.Exit(1)
