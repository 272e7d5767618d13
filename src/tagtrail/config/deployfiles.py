"""The deploy files tagtrail.yaml names (`deploy.git.files`), as paths in the work tree that holds them:
each entry a path or a glob (`config.globs`), matched in sorted order, each file once, in the order of the
entries. An entry that matches no file is a mistake (a typo would otherwise make every command silently do
nothing), reported at its line in tagtrail.yaml."""

from __future__ import annotations

from pathlib import Path

from tagtrail.config.globs import files_matching, is_glob
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
    first entry that matches none (`where` says which tree that was)."""
    git = config.deploy.git
    if git is None:
        return []
    found: dict[str, None] = {}
    for index, entry in enumerate(git.files):
        glob = is_glob(entry)
        matched = files_matching(root, entry) if glob else [entry] if (root / entry).is_file() else []
        if not matched:
            what = "matches no file" if glob else "is not a file"
            raise located(
                config,
                ("deploy", "git", "files", index),
                f"'{entry}' {what} in {where}; correct it (a glob: * within a folder, ** across folders)",
            )
        found.update(dict.fromkeys(matched))
    return list(found)
