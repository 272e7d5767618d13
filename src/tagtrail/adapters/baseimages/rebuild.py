"""Acting on a moved base: at most one rebuild per app per base digest (a ledger in SQLite that survives
restarts, so a base republished often never loops), started through GitHub's workflow_dispatch for just
those apps, or by `tagtrail build --push` where tagtrail runs next to a builder.

The GitHub call follows GitHub's REST description of "Create a workflow dispatch event":
`POST {api}/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches` with `{"ref", "inputs"}`, a
bearer token, answered 204 No Content (200 where run details are returned). The token is never logged nor
put in an error; GitHub's own message is, cut short.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.store import Store
from tagtrail.config.bases import GitHubDispatchConfig, LocalBuildConfig
from tagtrail.errors import TagtrailError

MESSAGE_CAP = 200
_LEDGER = "the rebuild ledger"


class Ledger:
    """Which (app, base digest) rebuilds were started: a table of the SQLite store, the decision log's
    file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store = Store(path)

    def claim(self, app: str, digest: str, via: str) -> bool:
        """True when this (app, base digest) had no rebuild yet, and now has one. A ledger that cannot be
        written claims nothing: no rebuild without its record (the guard against loops)."""
        claimed = self._store.write(
            lambda tx: (
                tx.run(
                    "INSERT OR IGNORE INTO base_rebuilds VALUES (?, ?, ?, ?)",
                    (app, digest, datetime.now(UTC).isoformat(), via),
                )
                == 1
            ),
            what=_LEDGER,
            failing=f": {app} is not rebuilt",
        )
        return claimed is True

    def release(self, app: str, digest: str) -> None:
        """A rebuild that could not be started: the next check may try again."""
        self._store.write(
            lambda tx: tx.run("DELETE FROM base_rebuilds WHERE app = ? AND base_digest = ?", (app, digest)),
            what=_LEDGER,
        )

    def started(self) -> list[tuple[str, str, str]]:
        """(app, base digest, via) of every rebuild started, oldest first."""
        rows = self._store.read(
            "SELECT app, base_digest, via FROM base_rebuilds ORDER BY started", what=_LEDGER
        )
        return [(str(app), str(digest), str(via)) for app, digest, via in rows]


async def dispatch(
    settings: GitHubDispatchConfig, apps: list[str], *, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Run the build workflow for `apps` (its `apps` input), or raise TagtrailError saying why not."""
    token = os.environ.get(settings.token_env, "")
    if not token:
        raise TagtrailError(f"base_images.github: the environment variable {settings.token_env} is not set")
    url = (
        f"{settings.api_url.rstrip('/')}/repos/{settings.repository}"
        f"/actions/workflows/{settings.workflow}/dispatches"
    )
    headers = {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    body = {"ref": settings.ref, "inputs": {"apps": " ".join(apps)}}
    where = f"{settings.repository} {settings.workflow}"
    try:
        async with httpx.AsyncClient(timeout=30, transport=transport) as client:
            response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise TagtrailError(f"GitHub could not be reached to run {where}: {type(exc).__name__}") from None
    if response.status_code in (200, 204):
        return
    raise TagtrailError(
        f"GitHub refused to run {where} on {settings.ref} ({response.status_code}): {_message(response)}"
    )


def _message(response: httpx.Response) -> str:
    try:
        found = json.loads(response.content).get("message")
    except (ValueError, AttributeError):
        found = None
    text = str(found) if found else response.text
    return " ".join(text.split())[:MESSAGE_CAP] or "no message"


async def build_locally(
    settings: LocalBuildConfig, config_path: Path, apps: list[str], commit: str | None, branch: str
) -> None:
    """`tagtrail build --push APP…` of the running commit (in a worktree of the checkout tagtrail.yaml is
    in, so the rebuild is of the code that runs, tagged with `branch`), or of HEAD where the commit is not
    known; TagtrailError with the build's last lines when it fails."""
    repo = await asyncio.to_thread(GitRepo.discover, config_path.parent)
    full = await asyncio.to_thread(repo.resolve, commit) if commit else None
    if commit and full is None:
        raise TagtrailError(f"the running commit {commit} is not in {repo.root}: fetch it, or build by hand")
    with tempfile.TemporaryDirectory(prefix="tagtrail-rebuild-") as scratch:
        tree = Path(scratch) / "tree"
        if full is not None:
            await asyncio.to_thread(repo.run, "worktree", "add", "--detach", "--quiet", str(tree), full)
        where = tree if full is not None else repo.root
        try:
            config = where / config_path.resolve().relative_to(repo.root.resolve())
            await _build(settings, config, apps, branch)
        finally:
            if full is not None:
                await asyncio.to_thread(repo.try_run, "worktree", "remove", "--force", str(tree))


async def _build(settings: LocalBuildConfig, config_path: Path, apps: list[str], branch: str) -> None:
    command = [
        sys.executable,
        "-m",
        "tagtrail",
        "-c",
        str(config_path),
        "build",
        "--push",
        "--branch",
        branch,
    ]
    if settings.builder:
        command += ["--builder", settings.builder]
    process = await asyncio.create_subprocess_exec(
        *command,
        *apps,
        cwd=config_path.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        tail = " | ".join(out.decode(errors="replace").strip().splitlines()[-3:])
        raise TagtrailError(
            f"tagtrail build --push {' '.join(apps)} failed (exit {process.returncode}): {tail}"
        )
