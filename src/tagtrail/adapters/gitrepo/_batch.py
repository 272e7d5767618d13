"""Many questions of one kind, one git process for them all (DESIGN invariant 13): commit objects and file
texts (`cat-file --batch`), short shas (`cat-file --batch-check`), reachability and strict ancestry (one
`rev-list` walk), changed paths of many pairs (`diff-tree --stdin`). What a short sha names is remembered
(`Shas`): commits do not change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tagtrail.adapters.gitrepo._process import HEX, git, redact, run, run_bytes
from tagtrail.errors import GitError

_SHAS_MAX = 4096


@dataclass(frozen=True)
class CommitInfo:
    """What one commit object says: its full sha, committer time, author and message."""

    sha: str
    time: datetime
    author: str
    message: str


class Shas:
    """Short sha → the full sha of the commit it names, as found (bounded: cleared when full); and the short
    shas a later question will name (`expect`), resolved by the next batch that resolves any."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}
        self._expected: dict[str, None] = {}

    def get(self, rev: str) -> str | None:
        return self._known.get(rev)

    def expect(self, revs: Iterable[str]) -> None:
        for rev in revs:
            if rev and rev.lower() not in self._known and len(self._expected) < _SHAS_MAX:
                self._expected[rev.lower()] = None

    def expected(self) -> list[str]:
        """The short shas expected and not yet known, once: the batch that takes them resolves them."""
        found = [rev for rev in self._expected if rev not in self._known]
        self._expected.clear()
        return found

    def remember(self, rev: str, sha: str) -> None:
        if len(self._known) >= _SHAS_MAX:
            self._known.clear()
        self._known[rev] = sha


@dataclass(frozen=True)
class BatchReader:
    """The batched reads of the work tree at `root`; `GitRepo` hands its batched questions here."""

    root: Path
    shas: Shas

    def commits(self, revs: Iterable[str]) -> dict[str, CommitInfo]:
        """Many commits at once (full or short shas), in one git process: the revs this repository knows,
        each with what its commit object says. Unknown revs are left out."""
        wanted = [rev for rev in dict.fromkeys(revs) if rev and "\n" not in rev]
        found = self._cat_file([f"{rev}^{{commit}}" for rev in wanted])  # a short sha: the commit, not a tree
        return {
            rev: _commit_info(sha, body.decode(errors="replace"))
            for rev, (sha, body) in zip(wanted, found, strict=True)
            if sha
        }

    def texts(self, specs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The text of many (rev, path) at once, in one git process; None where the file is not there."""
        wanted = [spec for spec in dict.fromkeys(specs) if spec[0] and "\n" not in spec[0] + spec[1]]
        found = self._cat_file([f"{rev}:{path}" for rev, path in wanted])
        return {
            spec: body.decode("utf-8", errors="replace") if sha else None
            for spec, (sha, body) in zip(wanted, found, strict=True)
        }

    def _cat_file(self, names: list[str]) -> list[tuple[str, bytes]]:
        """`git cat-file --batch`: per name, (full sha, content), or ("", b"") when there is no such object."""
        if not names:
            return []
        result = run_bytes(
            self.root, "cat-file", "--batch", stdin="".join(f"{name}\n" for name in names).encode()
        )
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise GitError(f"git cat-file failed in {self.root}: {redact(detail)}")
        return _read_batch(result.stdout, len(names))

    def commits_named(self, prefix: str) -> list[str]:
        """Every commit here whose sha starts with `prefix` (4 to 40 hex digits): none, one, or several."""
        prefix = prefix.lower()
        if not HEX.fullmatch(prefix) or len(prefix) > 40:
            return []
        result = run(self.root, "rev-parse", f"--disambiguate={prefix}")
        names = result.stdout.split() if result.returncode == 0 else []
        return [n for n in names if run(self.root, "cat-file", "-t", n).stdout.strip() == "commit"]

    def commits_named_many(self, prefixes: Iterable[str]) -> dict[str, list[str]]:
        """`commits_named` of many prefixes in one git process (`cat-file --batch-check`); only a prefix
        that names several objects costs processes of its own. A commit found is remembered for `resolve`."""
        found: dict[str, list[str]] = {p: [] for p in prefixes}
        asked = [p for p in found if HEX.fullmatch(p.lower()) and len(p) <= 40]
        if not asked:
            return found
        # the shas a later question names (what runs, for the ancestry walk) ride along: no process of their own
        ahead = [p for p in self.shas.expected() if HEX.fullmatch(p) and len(p) <= 40 and p not in found]
        result = run(
            self.root,
            "cat-file",
            "--batch-check=%(objectname) %(objecttype)",
            stdin="".join(f"{p.lower()}\n" for p in [*asked, *ahead]),
        )
        lines = result.stdout.splitlines()
        if result.returncode != 0 or len(lines) != len(asked) + len(ahead):
            return {p: self.commits_named(p) for p in found}
        for prefix, line in zip(asked, lines, strict=False):
            name, _, kind = line.partition(" ")
            if kind == "ambiguous" or (kind != "missing" and not name.startswith(prefix.lower())):
                found[prefix] = self.commits_named(prefix)  # several objects, or a ref of that name
            elif kind == "commit":
                found[prefix] = [name]
                self.shas.remember(prefix.lower(), name)
        for prefix, line in zip(ahead, lines[len(asked) :], strict=True):
            name, _, kind = line.partition(" ")
            if kind == "commit" and name.startswith(prefix):  # anything else is asked again when named
                self.shas.remember(prefix, name)
        return found

    def resolve_many(self, revs: Iterable[str]) -> dict[str, str | None]:
        """`resolve` of many shas (short or full) in at most one git process: the one commit each names."""
        wanted = list(dict.fromkeys(revs))
        known = {r: full for r in wanted if (full := self.shas.get(r))}
        named = self.commits_named_many(r for r in wanted if r not in known)
        return {r: known.get(r) or (n[0] if len(n := named.get(r, [])) == 1 else None) for r in wanted}

    def reaches(self, ref: str, commit: str) -> bool:
        """Whether `commit` is reachable from `ref` (False when `ref` does not exist here)."""
        return run(self.root, "merge-base", "--is-ancestor", commit, ref).returncode == 0

    def reached(self, ref: str, commits: Iterable[str]) -> set[str]:
        """Which of `commits` (full shas) `ref` reaches, in one git process: `rev-list C… ^ref` lists what
        `ref` does not reach (read from stdin: thousands of shas do not fit a command line). None of them
        when `ref` does not exist here."""
        asked = list(dict.fromkeys(commits))
        if not asked:
            return set()
        result = run(self.root, "rev-list", "--stdin", stdin="".join(f"{c}\n" for c in [*asked, f"^{ref}"]))
        if result.returncode == 0:
            unreached = set(result.stdout.split())
            return {c for c in asked if c not in unreached}
        if run(self.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
            return set()
        return {c for c in asked if self.reaches(ref, c)}  # a commit git cannot walk: one by one

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
            # One ancestor asked (a push: is what runs below the candidate?): no path from a tip to it passes
            # its parents, so the walk stops there instead of covering the whole history.
            bound = [f"^{next(iter(wanted))}^@"] if len(wanted) == 1 else []
            walk = git(
                self.root, "rev-list", "--topo-order", "--parents", "--stdin", stdin="\n".join(tips + bound)
            )
            pending: dict[str, int] = {}  # every child of a commit comes before it: its set is complete
            for line in walk.splitlines():
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

    def changed_paths_many(self, pairs: list[tuple[str, str]]) -> list[list[str]]:
        """`changed_paths` of many (base, head) pairs of full shas, in one git process (`diff-tree --stdin`
        names each pair by its base, in the order given, then the paths that differ)."""
        if not pairs:
            return []
        out = git(
            self.root,
            "diff-tree",
            "--stdin",
            "--always",
            "-r",
            "--name-only",
            "--no-renames",
            "-z",
            stdin="".join(f"{base} {head}\n" for base, head in pairs),
            strip=False,
        )
        tokens = [t for t in out.split("\0") if t]
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
