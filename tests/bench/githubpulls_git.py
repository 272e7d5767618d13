"""The stand-in's bare repository: what GitHub reads from it (heads, mergeability) and writes to it (merges).

Merges are written as GitHub writes them, with GitHub as committer and the person as author:
- squash: one commit on base, the head's tree merged onto base, its message given by the caller;
- merge: a merge commit with base and head as parents;
- rebase: each head commit replayed on base, author and message kept.
Branch protection is a proc-receive hook, so a refused push reads as GitHub's does:
`! [remote rejected] main -> main (protected branch hook declined)`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.git import git

ZERO = "0" * 40
GITHUB = {
    "GIT_COMMITTER_NAME": "GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.com",
}


def head(remote: Path, branch: str) -> str | None:
    result = _run(remote, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}", check=False)
    return result.stdout.strip() or None


def branches(remote: Path) -> dict[str, str]:
    """Every branch and its commit, in one git process."""
    listed = git(remote, "for-each-ref", "--format=%(refname:lstrip=2) %(objectname)", "refs/heads/")
    return dict(line.split(" ", 1) for line in listed.splitlines())


def commits(remote: Path, base: str, tip: str) -> list[str]:
    """The commits on `tip` that `base` lacks, oldest first: what a pull request shows."""
    return git(remote, "rev-list", "--reverse", f"{base}..{tip}").split()


def diffstat(remote: Path, base: str, tip: str) -> tuple[int, int, int]:
    """Lines added, lines deleted, files changed between base and `tip`'s merge base, as a pull request counts."""
    rows = [line.split("\t") for line in git(remote, "diff", "--numstat", f"{base}...{tip}").splitlines()]
    added = sum(int(row[0]) for row in rows if row[0].isdigit())
    deleted = sum(int(row[1]) for row in rows if row[1].isdigit())
    return added, deleted, len(rows)


def message(remote: Path, commit: str) -> str:
    return git(remote, "log", "-1", "--format=%B", commit)


def merged_tree(remote: Path, base: str, tip: str) -> str | None:
    """The tree of `tip` merged into `base`, or None where they conflict (GitHub's "dirty")."""
    result = _run(remote, "merge-tree", "--write-tree", base, tip, check=False)
    if result.returncode == 1:
        return None
    if result.returncode != 0:
        raise AssertionError(f"git merge-tree failed in {remote}:\n{result.stderr}")
    return result.stdout.split()[0]


def squash(remote: Path, base: str, tip: str, text: str, author: tuple[str, str]) -> str:
    tree = merged_tree(remote, base, tip)
    assert tree is not None, "a dirty pull request is not merged"
    return _commit(remote, tree, (base,), text, author)


def merge(remote: Path, base: str, tip: str, text: str, author: tuple[str, str]) -> str:
    tree = merged_tree(remote, base, tip)
    assert tree is not None, "a dirty pull request is not merged"
    return _commit(remote, tree, (base, tip), text, author)


def rebase(remote: Path, base: str, tip: str) -> str:
    """Each commit of `tip` replayed onto `base` in a scratch clone, its objects fetched back."""
    with tempfile.TemporaryDirectory(prefix="githubpulls-rebase-") as scratch:
        work = Path(scratch)
        git(work, "clone", "-q", "--shared", "--no-checkout", str(remote), ".")
        git(work, "checkout", "-q", "--detach", base)
        for commit in commits(remote, base, tip):
            _run(work, "cherry-pick", "--allow-empty", "--keep-redundant-commits", commit, env=GITHUB)
        replayed = git(work, "rev-parse", "HEAD")
        git(remote, "fetch", "-q", "--no-tags", str(work), "HEAD")
    return replayed


def advance(remote: Path, branch: str, path: str, text: str, note: str, author: tuple[str, str]) -> str:
    """Someone else's commit on `branch` (its first, where there is none yet), written without a work tree."""
    parent = head(remote, branch)
    blob = _run(remote, "hash-object", "-w", "--stdin", stdin=text).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="githubpulls-index-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if parent:
            _run(remote, "read-tree", parent, env=index)
        _run(remote, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
        tree = _run(remote, "write-tree", env=index).stdout.strip()
    commit = _commit(remote, tree, (parent,) if parent else (), note, author, committer=author)
    move(remote, branch, commit, parent or ZERO)
    return commit


def move(remote: Path, branch: str, new: str, old: str) -> None:
    """Move `branch` from `old` to `new`, refused if it moved meanwhile (as a push would be)."""
    git(remote, "update-ref", f"refs/heads/{branch}", new, old)


def protect(remote: Path, patterns: list[str]) -> None:
    """Refuse pushes to branches matching `patterns` (fnmatch, as GitHub's rules) with GitHub's words."""
    hook = remote / "hooks" / "proc-receive"
    hook.write_text(_HOOK.format(python=sys.executable, patterns=patterns))
    hook.chmod(0o755)
    git(remote, "config", "receive.procReceiveRefs", "refs/heads/")


def _commit(
    remote: Path,
    tree: str,
    parents: tuple[str, ...],
    text: str,
    author: tuple[str, str],
    committer: tuple[str, str] | None = None,
) -> str:
    env = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1], **GITHUB}
    if committer:
        env |= {"GIT_COMMITTER_NAME": committer[0], "GIT_COMMITTER_EMAIL": committer[1]}
    args = [arg for parent in parents for arg in ("-p", parent)]
    return _run(remote, "commit-tree", tree, *args, stdin=text, env=env).stdout.strip()


def _run(
    cwd: Path, *args: str, check: bool = True, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = os.environ | (env or {})
    result = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False, env=environ
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result


# git's proc-receive protocol (githooks(5)): pkt-lines in, a verdict per ref out. A ref the hook accepts it
# must update itself; a refused one carries the reason git prints, here GitHub's.
_HOOK = """#!{python}
import fnmatch, subprocess, sys

PATTERNS = {patterns!r}
ZERO = "0" * 40


def read():
    size = int(sys.stdin.buffer.read(4), 16)
    return None if size == 0 else sys.stdin.buffer.read(size - 4).decode().rstrip("\\n")


def write(text=None):
    out = sys.stdout.buffer
    out.write(b"0000" if text is None else b"%04x%s" % (len(text) + 5, (text + "\\n").encode()))
    out.flush()


while read() is not None:
    pass
write("version=1")
write()
commands = []
while (line := read()) is not None:
    commands.append(line.split(" ", 2))
for old, new, ref in commands:
    branch = ref.removeprefix("refs/heads/")
    if any(fnmatch.fnmatchcase(branch, p) for p in PATTERNS):
        print(f"error: GH006: Protected branch update failed for {{ref}}.", file=sys.stderr)
        print("error: Changes must be made through a pull request.", file=sys.stderr)
        write(f"ng {{ref}} protected branch hook declined")
        continue
    update = ["git", "update-ref", ref, new, old] if new != ZERO else ["git", "update-ref", "-d", ref, old]
    if subprocess.run(update, capture_output=True).returncode:
        write(f"ng {{ref}} failed to update ref")
    else:
        write(f"ok {{ref}}")
write()
"""
