"""The path patterns tagtrail.yaml takes (`apps.inputs`, `deploy.git.files`), gitignore-style: `*` and `?`
stay within a folder, `**` spans any number of them. Matched against repository paths, or against the files
of a work tree (walked from the pattern's fixed folder only, never into `.git` or through a symlinked
folder below it, so a pattern costs what it names, not the size of the repository; a fixed folder that is a
link is followed, and `config.deployfiles` refuses what lands outside the repository)."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path, PurePosixPath


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def glob_match(pattern: str, path: str) -> bool:
    """gitignore-style matching of a repository path: `*` and `?` stay within a folder, `**` spans any."""
    return _glob_regex(pattern).fullmatch(path) is not None


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    segments = PurePosixPath(pattern).parts
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:.*/)?")
            continue
        regex = ""
        for char in segment:
            regex += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        parts.append(regex + ("" if last else "/"))
    return re.compile("".join(parts))


def files_matching(root: Path, pattern: str) -> list[str]:
    """The files under `root` (a work tree) whose paths match `pattern`, sorted."""
    parts = PurePosixPath(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if is_glob(part)), len(parts))
    deep = "**" in parts[fixed:]
    below = len(parts) - fixed  # folder levels a pattern without ** reaches below its fixed part
    found = []
    for folder, folders, names in os.walk(root.joinpath(*parts[:fixed])):
        relative = Path(folder).relative_to(root)
        level = len(relative.parts) - fixed
        folders[:] = sorted(f for f in folders if f != ".git") if deep or level + 1 < below else []
        found += [p for name in names if glob_match(pattern, p := (relative / name).as_posix())]
    return sorted(found)
