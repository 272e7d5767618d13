"""The deploy files tagtrail.yaml names (`deploy.git.files`), as paths in the work tree that holds them:
each entry a path or a glob (`config.globs`), matched in sorted order, each file once, in the order of the
entries. An entry that matches no file is a mistake (a typo would otherwise make every command silently do
nothing), reported at its line in tagtrail.yaml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tagtrail.config.environments import deploy_place
from tagtrail.config.globs import files_matching, glob_match, is_glob
from tagtrail.config.loader import located
from tagtrail.config.model import Config

IN_REPOSITORY = "the deploy repository"
SHOWN = 4  # files named in a message; past that, how many more


def described(files: list[str]) -> str:
    """The files read, for a message: "deploy/a.yaml, deploy/b.yaml", or the first few and a count."""
    if len(files) <= SHOWN:
        return ", ".join(files)
    return f"{', '.join(files[:SHOWN])} and {len(files) - SHOWN} more deploy files"


def pathspecs(entries: list[str]) -> list[str]:
    """The entries as git pathspecs: a glob with git's `glob` magic, so `*` stays within a folder there too."""
    return [f":(glob){e}" if is_glob(e) else e for e in entries]


def deploy_files(config: Config, root: Path, where: str = IN_REPOSITORY) -> list[str]:
    """Every file deploy.git.files names in the work tree at `root`, or a ConfigError at the line of the
    first entry that matches none or leads out of the tree through a link (`where` says which tree that was;
    who pushes to it writes tagtrail.yaml too, and may not name a file outside it)."""
    inside = root.resolve()
    return _resolve(
        config,
        lambda entry: files_matching(root, entry) if is_glob(entry) else _one(root, entry),
        where,
        lambda path: not (root / path).resolve().is_relative_to(inside),
    )


def deploy_files_among(config: Config, paths: list[str], where: str) -> list[str]:
    """The same, matched against the files of a commit's tree (`git ls-tree -r`), not a work tree."""
    ordered = sorted(paths)
    present = set(paths)
    return _resolve(
        config,
        lambda entry: (
            [p for p in ordered if glob_match(entry, p)]
            if is_glob(entry)
            else ([entry] if entry in present else [])
        ),
        where,
    )


def _one(root: Path, entry: str) -> list[str]:
    return [entry] if (root / entry).is_file() else []


def _resolve(
    config: Config,
    match: Callable[[str], list[str]],
    where: str,
    out: Callable[[str], bool] = lambda _: False,
) -> list[str]:
    git = config.deploy.git
    if git is None:
        return []
    found: dict[str, None] = {}
    for index, entry in enumerate(git.files):
        matched = match(entry)
        linked = next((path for path in matched if out(path)), None)
        if linked is not None:
            raise located(
                config,
                (*deploy_place(config), "git", "files", index),
                f"'{entry}': {linked} in {where} is a link out of the repository (or in a folder that is one)",
            )
        if not matched:
            what = "matches no file" if is_glob(entry) else "is not a file"
            raise located(
                config,
                (*deploy_place(config), "git", "files", index),
                f"'{entry}' {what} in {where}; correct it (a glob: * within a folder, ** across folders)",
            )
        found.update(dict.fromkeys(matched))
    return list(found)
