"""The apps of a repository as init finds them: folders with a Dockerfile or Containerfile below one root,
the shared folders their Dockerfiles copy (`COPY ../pylib …`), and the folders that cannot be apps.

What a Makefile copies into a build folder is beyond this: Makefiles are programs, not declarations. A
Makefile that reaches outside its app folder is reported, so the reader adds what it copies to apps.inputs.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tagtrail.adapters.apps import BUILD_FILES
from tagtrail.adapters.registry import ImageRef
from tagtrail.errors import InvalidReference
from tagtrail.features.init.choice import Choice
from tagtrail.features.init.reader import Reader

MAKEFILES = ("Makefile", "makefile", "GNUmakefile")
_COPY = re.compile(r"(?i)^\s*(COPY|ADD)\s+(.*)$")


@dataclass
class FoundApps:
    """The apps below `root`, the folders there that are not apps, and more inputs of each app: paths
    outside its folder that its build reads, each with the Dockerfile line that says so."""

    root: str
    names: list[str] = field(default_factory=list)
    exclude: dict[str, str] = field(default_factory=dict)  # folder → why it is not an app
    inputs: dict[str, list[Choice]] = field(default_factory=dict)
    todo: list[str] = field(default_factory=list)


def find_apps(reader: Reader, files: list[str]) -> FoundApps:
    """Apps below the folder that holds most of the repository's app folders (`apps` when there are none)."""
    listed = set(files)
    builds = [PurePosixPath(f) for f in files if PurePosixPath(f).name in BUILD_FILES]
    parents = Counter(p.parent.parent.as_posix() for p in builds if len(p.parts) >= 2)
    apps_root = max(parents, key=lambda p: (parents[p], p == "apps")) if parents else "apps"
    found = FoundApps(apps_root)
    if not parents:
        found.todo.append(
            "no folder with a Dockerfile or Containerfile was found: put each app in apps/<name>/ with one"
        )
    for build in builds:
        if build.parent.parent.as_posix() != apps_root or len(build.parts) < 2:
            found.todo.append(
                f"{build} is not in a folder directly below {apps_root}/: tagtrail builds the apps of one"
                " folder (apps.root), so it is not an app; move it there if it should be"
            )
    folders = sorted({b.parent for b in builds if b.parent.parent.as_posix() == apps_root})
    for folder in folders:
        if folder.name.startswith("."):
            continue
        if not _names_an_image(folder.name):
            found.exclude[folder.name] = (
                "cannot name an image (lowercase letters, digits and . _ - only); rename it to make it an app"
            )
            continue
        found.names.append(folder.name)
        for item in _copied(reader, listed, folder):
            found.inputs.setdefault(folder.name, []).append(item)
        found.todo += _makefile_notes(reader, listed, folder)
    for app, items in found.inputs.items():
        for item in items:
            shared = PurePosixPath(item.value.removesuffix("/**"))
            if shared.parent.as_posix() == apps_root and shared.name not in found.names:
                found.exclude.setdefault(shared.name, f"shared: {app} copies it at build time; not an app")
    return found


def _names_an_image(name: str) -> bool:
    try:
        ImageRef.parse(f"example.invalid/{name}")
    except InvalidReference:
        return False
    return True


def _instructions(text: str) -> list[tuple[int, str]]:
    """A Dockerfile's instructions with their first line (1-based), continuation lines joined."""
    found: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, pending + line))
        pending = ""
    if pending:
        found.append((start, pending))
    return found


def _copied(reader: Reader, files: set[str], folder: PurePosixPath) -> list[Choice]:
    """Paths outside `folder` that COPY or ADD instructions of its Dockerfile take (`COPY ../pylib /app`)."""
    build = next((folder / n for n in BUILD_FILES if (folder / n).as_posix() in files), None)
    text = reader.text(build.as_posix()) if build is not None else None
    if build is None or text is None:
        return []
    found = []
    for line, instruction in _instructions(text):
        match = _COPY.match(instruction)
        if match is None:
            continue
        words = _words(match[2])
        if any(w.startswith("--from") for w in words):
            continue  # from another stage or image, not from the repository
        sources = [w for w in words if not w.startswith("--")][:-1]
        for source in sources:
            path = posixpath.normpath(posixpath.join(folder.as_posix(), source))
            if path == folder.as_posix() or path.startswith(folder.as_posix() + "/") or "://" in source:
                continue
            if path.startswith(".."):
                continue  # outside the repository: nothing a commit here changes
            pattern = f"{path}/**" if (reader.root / path).is_dir() else path
            found.append(Choice(pattern, f"{build}:{line} {match[1].upper()} {source}"))
    return found


def _words(arguments: str) -> list[str]:
    text = arguments.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _makefile_notes(reader: Reader, files: set[str], folder: PurePosixPath) -> list[str]:
    notes = []
    for name in MAKEFILES:
        path = (folder / name).as_posix()
        text = reader.text(path) if path in files else None
        if text is not None and "../" in text:
            notes.append(
                f"{folder}/{name} reaches outside {folder}/ (tagtrail does not read Makefiles): add what it"
                f" copies into the build to apps.inputs.{folder.name}, so a change there rebuilds {folder.name}"
            )
    return notes
