"""Apps of the monorepo: found by their Dockerfile, and which of them a range of commits changed.

An app is a folder directly below `apps.root` that holds a Dockerfile or a Containerfile; the folder is
its build context and its name names its image. An app changed when a file in its folder, its Dockerfile,
or one of its declared `apps.inputs` changed; every app changed when the build-relevant part of
tagtrail.yaml changed, or when the base of the range is not known (a first push, a force-push, the all-zero
sha GitHub sends for a new branch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.config import Config, parse_config
from tagtrail.config.globs import glob_match
from tagtrail.config.loader import CONFIG_NAME
from tagtrail.errors import ConfigError, GitError, TagtrailError

BUILD_FILES = ("Dockerfile", "Containerfile")
ZERO_SHA = "0" * 40
_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")  # an image path component


@dataclass(frozen=True)
class App:
    """One app: its name, build context and Dockerfile (paths relative to the repository), and image."""

    name: str
    context: str
    dockerfile: str
    image: str
    inputs: tuple[str, ...] = ()

    def matrix_entry(self) -> dict[str, str]:
        """What a GitHub Actions matrix entry holds for this app."""
        return {"app": self.name, "context": self.context, "dockerfile": self.dockerfile, "image": self.image}

    def owns(self, path: str) -> bool:
        """Whether a change to `path` (relative to the repository) changes this app's build."""
        return (
            path == self.dockerfile
            or path.startswith(self.context.rstrip("/") + "/")
            or any(
                glob_match(pattern, path) or glob_match(f"{pattern.rstrip('/')}/**", path)
                for pattern in self.inputs
            )
        )


def discover(root: Path, config: Config) -> list[App]:
    """Every app below `apps.root` of the repository at `root`, sorted by name."""
    apps_root = root / config.apps.root
    if not apps_root.is_dir():
        raise TagtrailError(
            f"apps.root '{config.apps.root}' is not a folder in {root}; create it or fix apps.root"
        )
    found = [
        app
        for folder in sorted(p for p in apps_root.iterdir() if p.is_dir())
        if (app := _app_in(folder, root, config)) is not None
    ]
    unknown = sorted(set(config.apps.inputs) - {app.name for app in found})
    if unknown:
        raise TagtrailError(
            f"apps.inputs names '{unknown[0]}', which is not an app below {config.apps.root}/"
        )
    return found


def changed(repo: GitRepo, config: Config, base: str, head: str = "HEAD") -> tuple[list[App], str]:
    """The apps whose build inputs changed between `base` and `head`, and why (one sentence)."""
    apps = discover(repo.root, config)
    if base.strip("0") == "" or not repo.has_commit(base):
        return apps, f"{base[:12] or 'the base'} is not a commit of this repository: building every app"
    return changed_in(repo, apps, base, head, repo.changed_paths(base, head))


def changed_in(
    repo: GitRepo, apps: list[App], base: str, head: str, paths: list[str]
) -> tuple[list[App], str]:
    """`changed` for two commits whose differing `paths` are already read (many pairs in one process:
    `GitRepo.changed_paths_many`): every app when the build settings changed, else the apps owning one."""
    if CONFIG_NAME in paths and _build_config(repo, base) != _build_config(repo, head):
        return apps, f"the build settings in {CONFIG_NAME} changed: building every app"
    picked = [app for app in apps if any(app.owns(path) for path in paths)]
    return picked, f"{len(paths)} files changed between {base[:12]} and {head}"


def discover_named(root: Path, config: Config, names: Iterable[str]) -> dict[str, App]:
    """The apps among `names`, as `discover` finds them, looking in their folders alone (a webhook's app
    among 500 need not list the other 499)."""
    apps_root = root / config.apps.root
    found = ((name, _app_in(apps_root / name, root, config)) for name in names if _NAME.fullmatch(name))
    return {name: app for name, app in found if app is not None}


def _app_in(folder: Path, root: Path, config: Config) -> App | None:
    """The app `folder` holds (None: excluded, or no Dockerfile or Containerfile there)."""
    if folder.name in config.apps.exclude or folder.name.startswith("."):
        return None
    build_file = next((folder / name for name in BUILD_FILES if (folder / name).is_file()), None)
    if build_file is None:
        return None
    if not _NAME.fullmatch(folder.name):
        raise TagtrailError(
            f"{folder.relative_to(root)}: '{folder.name}' cannot name an image (lowercase letters, digits and"
            " . _ - only); rename the folder or add it to apps.exclude"
        )
    return App(
        folder.name,
        folder.relative_to(root).as_posix(),
        build_file.relative_to(root).as_posix(),
        config.image_for(folder.name),
        tuple(config.apps.inputs.get(folder.name, ())),
    )


class CommitNotHere(GitError):
    """The commit asked about is not in this repository (yet: a fetch may bring it)."""


def of_commit(repo: GitRepo, config: Config, sha: str) -> list[App]:
    """The apps CI builds for commit `sha`: those it changed against its first parent, by the same rule as
    `changed` (every app for a root commit, or when the build settings changed). Asked for every webhook, so
    only the folders the commit touched (and the apps with declared inputs) are looked in, not every app's:
    one git process for a commit with a parent. CommitNotHere when this repository lacks the commit."""
    base = f"{sha}^"
    try:
        paths = repo.changed_paths(base, sha)
    except GitError:  # a root commit, or one this repository lacks
        if not repo.has_commit(sha):
            raise CommitNotHere(f"no commit {sha} here") from None
        return changed(repo, config, base, sha)[0]
    if CONFIG_NAME in paths:
        return changed_in(repo, discover(repo.root, config), base, sha, paths)[0]
    folder = PurePosixPath(config.apps.root).as_posix()
    prefix = "" if folder == "." else folder + "/"
    touched = {p.removeprefix(prefix).split("/")[0] for p in paths if p.startswith(prefix)}
    apps = discover_named(repo.root, config, sorted(touched | set(config.apps.inputs)))
    return changed_in(repo, sorted(apps.values(), key=lambda a: a.name), base, sha, paths)[0]


def _build_config(repo: GitRepo, rev: str) -> object:
    """The part of tagtrail.yaml that decides how images are built, at `rev` (None if it has none)."""
    text = repo.show(rev, CONFIG_NAME)
    if text is None:
        return None
    try:
        config = parse_config(text, f"{CONFIG_NAME} at {rev[:12]}")
    except ConfigError:
        return ("invalid", text)  # a broken config at either end counts as a change
    return (config.scheme, config.sha_length, config.image, config.apps.model_dump())
