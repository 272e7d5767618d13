"""git through the git CLI: the facts tagtrail needs about a repository, with errors translated to GitError."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tagtrail.errors import GitError


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})},
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None


def _git(cwd: Path, *args: str, strip: bool = True, env: dict[str, str] | None = None) -> str:
    result = _run(cwd, *args, env=env)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"git {args[0]} failed in {cwd}: {_redact(detail)}")
    return result.stdout.strip() if strip else result.stdout


_HEX = re.compile(r"[0-9a-f]{4,64}")
_RESOLVED_MAX = 4096


def _redact(text: str) -> str:
    """Credentials in remote URLs (https://user:token@host) never reach a message."""
    return re.sub(r"(://[^/@\s:]+):[^@/\s]+@", r"\1:***@", text)


@dataclass(frozen=True)
class Push:
    """What a push did: `ok`; otherwise `rejected` (lost a race: fetch and try again) or another failure."""

    ok: bool
    rejected: bool
    detail: str


@dataclass(frozen=True)
class CommitInfo:
    """What one commit object says: its full sha, committer time, author and message."""

    sha: str
    time: datetime
    author: str
    message: str


@dataclass(frozen=True)
class GitRepo:
    """A work tree, addressed by its top-level folder. What it learns that cannot change (a short sha's
    commit, the committer identity) it keeps for its own lifetime: a long-lived owner (the controller)
    keeps one GitRepo and so its answers; a CLI run starts afresh."""

    root: Path
    _resolved: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _identity: list[tuple[str, str] | None] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def discover(cls, start: Path) -> GitRepo:
        """The repository containing `start`, or GitError saying there is none."""
        folder = start if start.is_dir() else start.parent
        try:
            top = Path(_git(folder, "rev-parse", "--show-toplevel"))
        except GitError:
            raise GitError(f"{start} is not inside a git repository") from None
        return cls(top)

    def head_sha(self) -> str:
        """The full sha of HEAD; GitError when the repository has no commit yet."""
        try:
            return _git(self.root, "rev-parse", "--verify", "HEAD^{commit}")
        except GitError:
            raise GitError(f"{self.root} has no commits yet; commit first") from None

    def current_branch(self) -> str | None:
        """The branch checked out, or None when HEAD is detached."""
        result = _run(self.root, "symbolic-ref", "--quiet", "--short", "HEAD")
        return result.stdout.strip() or None if result.returncode == 0 else None

    def commit_time(self, rev: str = "HEAD") -> datetime:
        """When `rev` was committed (the committer date, as metadata-action's commit_date uses)."""
        return datetime.fromisoformat(_git(self.root, "show", "-s", "--format=%cI", rev))

    def commits(self, revs: Iterable[str]) -> dict[str, CommitInfo]:
        """Many commits at once (full or short shas), in one git process: the revs this repository knows,
        each with what its commit object says. Unknown revs are left out."""
        wanted = [rev for rev in dict.fromkeys(revs) if rev and "\n" not in rev]
        found = self._batch([f"{rev}^{{commit}}" for rev in wanted])  # a short sha: the commit, not a tree
        return {
            rev: _commit_info(sha, body.decode(errors="replace"))
            for rev, (sha, body) in zip(wanted, found, strict=True)
            if sha
        }

    def texts(self, specs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The text of many (rev, path) at once, in one git process; None where the file is not there."""
        wanted = [spec for spec in dict.fromkeys(specs) if spec[0] and "\n" not in spec[0] + spec[1]]
        found = self._batch([f"{rev}:{path}" for rev, path in wanted])
        return {
            spec: body.decode("utf-8", errors="replace") if sha else None
            for spec, (sha, body) in zip(wanted, found, strict=True)
        }

    def _batch(self, names: list[str]) -> list[tuple[str, bytes]]:
        """`git cat-file --batch`: per name, (full sha, content), or ("", b"") when there is no such object."""
        if not names:
            return []
        try:  # bytes: the batch gives each object's size in bytes
            result = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self.root,
                input="".join(f"{name}\n" for name in names).encode(),
                capture_output=True,
                check=False,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
            )
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH") from None
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise GitError(f"git cat-file failed in {self.root}: {_redact(detail)}")
        return _read_batch(result.stdout, len(names))

    def has_commit(self, rev: str) -> bool:
        """Whether `rev` names a commit this repository has (a force-push can leave the old one unknown)."""
        return _run(self.root, "cat-file", "-e", f"{rev}^{{commit}}").returncode == 0

    def changed_paths(self, base: str, head: str = "HEAD") -> list[str]:
        """Paths that differ between two commits; a rename counts as its old and its new path."""
        out = _git(self.root, "diff", "--name-only", "--no-renames", "-z", base, head, strip=False)
        return [path for path in out.split("\0") if path]

    def changed_paths_many(self, pairs: list[tuple[str, str]]) -> list[list[str]]:
        """`changed_paths` of many (base, head) pairs of full shas, in one git process (`diff-tree --stdin`
        names each pair by its base, in the order given, then the paths that differ)."""
        if not pairs:
            return []
        out = _run(
            self.root,
            "diff-tree",
            "--stdin",
            "--always",
            "-r",
            "--name-only",
            "--no-renames",
            "-z",
            stdin="".join(f"{base} {head}\n" for base, head in pairs),
        )
        if out.returncode != 0:
            raise GitError(f"git diff-tree failed in {self.root}: {_redact(out.stderr.strip())}")
        tokens = [t for t in out.stdout.split("\0") if t]
        found: list[list[str]] = []
        at = 0
        for index, (base, _) in enumerate(pairs):
            if at >= len(tokens) or tokens[at] != base:
                raise GitError(f"git diff-tree in {self.root} answered out of order at {base[:12]}")
            at += 1
            following = pairs[index + 1][0] if index + 1 < len(pairs) else None
            paths: list[str] = []
            while at < len(tokens) and tokens[at] != following:
                paths.append(tokens[at])
                at += 1
            found.append(paths)
        return found

    def show(self, rev: str, path: str) -> str | None:
        """The text of `path` at `rev`, or None when the file is not there."""
        result = _run(self.root, "show", f"{rev}:{path}")
        return result.stdout if result.returncode == 0 else None

    def dirty_paths(self, paths: list[str]) -> list[str]:
        """Files among `paths` (folders included) with uncommitted changes or untracked, as git reports them."""
        out = _git(
            self.root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths, strip=False
        )
        entries = [e for e in out.split("\0") if e]
        found = []
        skip = False
        for entry in entries:
            if skip:  # the second path of a rename or copy
                skip = False
                continue
            status, path = entry[:2], entry[3:]
            skip = status[0] in "RC"
            found.append(path)
        return found

    def remote_url(self, name: str = "origin") -> str | None:
        result = _run(self.root, "remote", "get-url", name)
        return result.stdout.strip() or None if result.returncode == 0 else None

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Any git command in this work tree; GitError (with credentials redacted) when it fails."""
        return _git(self.root, *args, env=env)

    def try_run(self, *args: str, env: dict[str, str] | None = None) -> tuple[bool, str]:
        """A git command whose failure is an answer (a rejected push): (succeeded, last line of stderr)."""
        result = _run(self.root, *args, env=env)
        detail = (result.stderr.strip().splitlines() or [""])[-1]
        return result.returncode == 0, _redact(detail)

    def push(self, remote: str, refspec: str) -> Push:
        """Push one refspec. A push that lost a race (someone pushed first) is `rejected`; any other failure
        (unreachable, refused by a hook, no rights) is not, and retrying at once will not help."""
        result = _run(self.root, "push", "--porcelain", remote, refspec)
        if result.returncode == 0:
            return Push(True, False, "")
        statuses = [line for line in result.stdout.splitlines() if line.startswith("!")]
        lost = any("[rejected]" in line for line in statuses)
        detail = (statuses or result.stderr.strip().splitlines() or ["no message"])[-1]
        return Push(False, lost, _redact(detail.replace("\t", " ").lstrip("! ").strip()))

    def remote_head(self, remote: str, branch: str) -> str | None:
        """The sha the remote's branch points at now (None: cannot tell: unreachable, or no such branch)."""
        result = _run(self.root, "ls-remote", remote, f"refs/heads/{branch}")
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return result.stdout.split()[0]

    def resolve(self, rev: str) -> str | None:
        """The full sha `rev` names here (a short sha included), or None. A sha once found is remembered
        (commits do not change; the controller asks about the same few many times)."""
        if rev in self._resolved:
            return self._resolved[rev]
        result = _run(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        found = result.stdout.strip() or None if result.returncode == 0 else None
        if found is not None and _HEX.fullmatch(rev):
            self._remember(rev, found)
        return found

    def _remember(self, rev: str, sha: str) -> None:
        if len(self._resolved) >= _RESOLVED_MAX:
            self._resolved.clear()
        self._resolved[rev] = sha

    def commits_named(self, prefix: str) -> list[str]:
        """Every commit here whose sha starts with `prefix` (4 to 40 hex digits): none, one, or several."""
        prefix = prefix.lower()
        if not _HEX.fullmatch(prefix) or len(prefix) > 40:
            return []
        result = _run(self.root, "rev-parse", f"--disambiguate={prefix}")
        names = result.stdout.split() if result.returncode == 0 else []
        return [n for n in names if _run(self.root, "cat-file", "-t", n).stdout.strip() == "commit"]

    def commits_named_many(self, prefixes: Iterable[str]) -> dict[str, list[str]]:
        """`commits_named` of many prefixes in one git process (`cat-file --batch-check`); only a prefix
        that names several objects costs processes of its own. A commit found is remembered for `resolve`."""
        found: dict[str, list[str]] = {p: [] for p in prefixes}
        asked = [p for p in found if _HEX.fullmatch(p.lower()) and len(p) <= 40]
        if not asked:
            return found
        result = _run(
            self.root,
            "cat-file",
            "--batch-check=%(objectname) %(objecttype)",
            stdin="".join(f"{p.lower()}\n" for p in asked),
        )
        lines = result.stdout.splitlines()
        if result.returncode != 0 or len(lines) != len(asked):
            return {p: self.commits_named(p) for p in found}
        for prefix, line in zip(asked, lines, strict=True):
            name, _, kind = line.partition(" ")
            if kind == "ambiguous" or (kind != "missing" and not name.startswith(prefix.lower())):
                found[prefix] = self.commits_named(prefix)  # several objects, or a ref of that name
            elif kind == "commit":
                found[prefix] = [name]
                self._remember(prefix.lower(), name)
        return found

    def reaches(self, ref: str, commit: str) -> bool:
        """Whether `commit` is reachable from `ref` (False when `ref` does not exist here)."""
        return _run(self.root, "merge-base", "--is-ancestor", commit, ref).returncode == 0

    def reached(self, ref: str, commits: Iterable[str]) -> set[str]:
        """Which of `commits` (full shas) `ref` reaches, in one git process: `rev-list C… ^ref` lists what
        `ref` does not reach (read from stdin: thousands of shas do not fit a command line). None of them
        when `ref` does not exist here."""
        asked = list(dict.fromkeys(commits))
        if not asked:
            return set()
        result = _run(self.root, "rev-list", "--stdin", stdin="".join(f"{c}\n" for c in [*asked, f"^{ref}"]))
        if result.returncode == 0:
            unreached = set(result.stdout.split())
            return {c for c in asked if c not in unreached}
        if _run(self.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
            return set()
        return {c for c in asked if self.reaches(ref, c)}  # a commit git cannot walk: one by one

    def fetch_branches(self, remote: str, branches: list[str]) -> None:
        """Update the remote-tracking refs of `branches` from `remote` (GitError when it cannot)."""
        specs = [f"+refs/heads/{b}:refs/remotes/{remote}/{b}" for b in branches]
        _git(self.root, "fetch", "--quiet", "--no-tags", remote, *specs)

    def strict_ancestry(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bool | None]:
        """For each (ancestor, descendant) pair of shas, whether the first is a strict ancestor of the second
        (None: either is unknown here), every pair in at most two git processes whatever their number: the
        shas resolved in one `cat-file --batch-check`, then one walk of the descendants' history, children
        before parents, each commit carrying the set of descendants that reach it (a bit each)."""
        asked = list(dict.fromkeys(pairs))
        full = self.resolve_many(sha for pair in asked for sha in pair)
        tips = list(dict.fromkeys(d for _, s in asked if (d := full.get(s))))
        bits = {sha: 1 << n for n, sha in enumerate(tips)}
        wanted = {a for s, _ in asked if (a := full.get(s))}
        reached: dict[str, int] = {}  # an asked ancestor → the descendants that reach it
        if tips:
            walk = _run(self.root, "rev-list", "--topo-order", "--parents", "--stdin", stdin="\n".join(tips))
            if walk.returncode != 0:
                raise GitError(f"git rev-list failed in {self.root}: {_redact(walk.stderr.strip())}")
            pending: dict[str, int] = {}  # every child of a commit comes before it: its set is complete
            for line in walk.stdout.splitlines():
                sha, *parents = line.split()
                mask = pending.pop(sha, 0) | bits.get(sha, 0)
                if sha in wanted:
                    reached[sha] = mask
                for parent in parents:
                    pending[parent] = pending.get(parent, 0) | mask
        answers: dict[tuple[str, str], bool | None] = {}
        for ancestor, descendant in asked:
            a, d = full.get(ancestor), full.get(descendant)
            strict = a is not None and d is not None and a != d and bool(reached.get(a, 0) & bits[d])
            answers[ancestor, descendant] = None if a is None or d is None else strict
        return answers

    def resolve_many(self, revs: Iterable[str]) -> dict[str, str | None]:
        """`resolve` of many shas (short or full) in at most one git process: the one commit each names."""
        wanted = list(dict.fromkeys(revs))
        known = {r: self._resolved[r] for r in wanted if r in self._resolved}
        named = self.commits_named_many(r for r in wanted if r not in known)
        return {r: known.get(r) or (n[0] if len(n := named.get(r, [])) == 1 else None) for r in wanted}

    def log(
        self, paths: list[str], rev: str = "HEAD", limit: int | None = None
    ) -> list[tuple[str, str, str, str, str]]:
        """Commits touching `paths`, newest first: (sha, parent or '', author, ISO time, message)."""
        args = ["log", "--first-parent", "--format=%H%x1f%P%x1f%an <%ae>%x1f%aI%x1f%B%x1e", rev]
        if limit:
            args.insert(1, f"-n{limit}")
        out = _git(self.root, *args, "--", *paths, strip=False)
        entries = []
        for raw in out.split("\x1e"):
            record = raw.strip("\n")
            if not record:
                continue
            sha, parents, author, when, message = record.split("\x1f", 4)
            entries.append((sha, parents.split(" ")[0] if parents else "", author, when, message))
        return entries

    def identity(self) -> tuple[str, str] | None:
        """git's configured user.name and user.email here, if both are set (read once per GitRepo)."""
        if not self._identity:
            name, email = _run(self.root, "config", "user.name"), _run(self.root, "config", "user.email")
            found = None
            if not (
                name.returncode or email.returncode or not name.stdout.strip() or not email.stdout.strip()
            ):
                found = name.stdout.strip(), email.stdout.strip()
            self._identity.append(found)
        return self._identity[0]


def _read_batch(out: bytes, count: int) -> list[tuple[str, bytes]]:
    """`git cat-file --batch` output read back: one object, or a `missing` line, per name asked for."""
    found: list[tuple[str, bytes]] = []
    at = 0
    for _ in range(count):
        end = out.index(b"\n", at)
        header = out[at:end].decode(errors="replace").split(" ")
        at = end + 1
        if len(header) != 3:  # "<name> missing" / "<name> ambiguous"
            found.append(("", b""))
            continue
        size = int(header[2])
        found.append((header[0], out[at : at + size]))
        at += size + 1
    return found


def _commit_info(sha: str, body: str) -> CommitInfo:
    head, _, message = body.partition("\n\n")
    author, when = "", datetime.fromtimestamp(0, UTC)
    for line in head.splitlines():
        key, _, value = line.partition(" ")
        if key == "author":
            author = value.rsplit(" ", 2)[0]
        elif key == "committer":
            when = datetime.fromtimestamp(int(value.rsplit(" ", 2)[1]), UTC)
    return CommitInfo(sha, when, author, message)
