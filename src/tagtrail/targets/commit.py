"""Making a deploy commit in a working copy: its files written atomically, the commit as the configured
author, and deploy.git.then after it, in an environment without tagtrail's secrets."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.config.gittarget import GitTargetConfig
from tagtrail.errors import TagtrailError
from tagtrail.targets.base import Applied, Then
from tagtrail.targets.workcopy import WorkingCopy

DEFAULT_AUTHOR = ("tagtrail", "tagtrail@localhost")
THEN_OUTPUT_CAP = 64 * 1024
THEN_TIMEOUT = 3600


def commit_paths(copy: WorkingCopy, paths: list[str], message: str, configured_author: str | None) -> None:
    """Commit `paths` of the copy as they are, with `message`, as the configured author (else git's user)."""
    name, email = _author(configured_author, copy.repo)
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(message)
    try:
        # `commit -- PATHS` takes those files as they are; only a file git does not know yet needs `add`
        committed, _ = copy.repo.try_run(
            "commit", "--quiet", "--no-verify", "-F", handle.name, "--", *paths, env=env
        )
        if not committed:
            copy.repo.run("add", "--", *paths)
            copy.repo.run("commit", "--quiet", "--no-verify", "-F", handle.name, "--", *paths, env=env)
    finally:
        os.unlink(handle.name)


def run_then(settings: GitTargetConfig, copy: WorkingCopy, project_root: Path, applied: Applied) -> None:
    """deploy.git.then after a deploy commit, its exit and output added to `applied`'s details."""
    command = settings.then
    if not command or applied.commit is None:
        return
    try:
        # deploy.git.then is a shell command line the user wrote in their own config, on purpose.
        result = subprocess.run(  # noqa: S602
            command,
            shell=True,
            cwd=copy.repo.root if copy.mode != "worktree" else project_root,
            env=then_environment(os.environ, settings.then_env),
            capture_output=True,
            text=True,
            timeout=THEN_TIMEOUT,
            check=False,
        )
        applied.details.add(Then(result.returncode, (result.stdout + result.stderr)[-THEN_OUTPUT_CAP:]))
    except subprocess.TimeoutExpired:
        applied.details.add(Then(-1, f"`{command}` did not finish within an hour"))


THEN_BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM")


def then_environment(environ: Mapping[str, str], allowed: list[str]) -> dict[str, str]:
    """The environment `deploy.git.then` runs with: the basics and what `then_env` names, nothing else.
    tagtrail.yaml on the deploy branch is code anyone with push rights writes; the dashboard token,
    webhook secrets and registry credentials in tagtrail's own environment must not be theirs to read."""
    keep = set(THEN_BASE_ENV) | set(allowed)
    return {k: v for k, v in environ.items() if k in keep or k.startswith("LC_")}


def write_file(path: Path, text: str) -> None:
    """Replace a file atomically, keeping its line endings as given (no newline translation)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tagtrail")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            shutil.copymode(path, temp)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise TagtrailError(f"cannot write {path}: {exc.strerror}") from None


def _author(configured: str | None, repo: GitRepo) -> tuple[str, str]:
    if configured:
        name, _, email = configured.partition(" <")
        return name, email.rstrip(">")
    return repo.identity() or DEFAULT_AUTHOR
