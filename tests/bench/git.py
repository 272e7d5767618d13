"""Git helpers for tests: run git in a folder, make work trees and bare remotes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git in `cwd` with the test's isolated HOME; return stdout, raise with stderr on failure."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout.strip()


def init_repo(path: Path, files: dict[str, str] | None = None, message: str = "initial") -> Path:
    """A new work tree on `main` with one commit of `files`."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files or {"README.md": "hello\n"}, message)
    return path


def commit(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


@dataclass(frozen=True)
class Remote:
    """A bare repository and the URL that reaches it."""

    path: Path
    url: str


def bare_repo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    git(path.parent, "init", "-q", "--bare", "-b", "main", path.name)
    return path
