"""Each app's newest deploy, as the dashboard's snapshot and `tagtrail status` read it, kept by a long-lived
GitOps target between reads (issue 25). The snapshot is taken after every deploy, under serve's write lock;
read afresh, it walked the deploy files' history back to the commit where the last app changed and parsed
every version of them on the way: at 500 apps in one file, every push since the last whole deploy made the
next push wait longer. Kept, a read walks only the commits since the one read before, when that one is on
the first-parent line of the head (a rewritten or reset branch, other files or other apps: read afresh).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import HistoryEntry, Known, deploy_history
from tagtrail.adapters.refs import Matcher
from tagtrail.errors import GitError


@dataclass
class Latest:
    head: str | None = None
    files: list[str] = field(default_factory=list)
    until: frozenset[str] = frozenset()
    entries: list[HistoryEntry] = field(default_factory=list)  # the newest of each app, newest first

    def read(
        self,
        repo: GitRepo,
        files: list[str],
        matcher: Matcher,
        until: Collection[str],
        known: Known | None = None,
    ) -> list[HistoryEntry]:
        """The newest change of each app of `until` (and of the others met on the way), newest first.
        `known`: the references of texts already read (the deploy index's), not searched again."""
        head = repo.head_sha()
        since = self.head if files == self.files and set(until) <= self.until else None
        if since is not None and since != head and not _follows(repo, since, head):
            since = None
        if since == head:
            return list(self.entries)
        rev = f"{since}..{head}" if since else head
        found = deploy_history(repo, files, matcher, rev=rev, until=until, known=known)
        newest: dict[str, HistoryEntry] = {}
        for entry in [*found, *(self.entries if since else [])]:
            newest.setdefault(entry.app, entry)
        self.head, self.files, self.until = head, list(files), frozenset(until)
        self.entries = list(newest.values())
        return list(self.entries)


def _follows(repo: GitRepo, old: str, new: str) -> bool:
    """Whether `old` is on the first-parent line of `new` (so the history of `new` is that of `old` and the
    commits between)."""
    try:
        out = repo.run("rev-list", "--first-parent", "--parents", f"{old}..{new}")
    except GitError:  # `old` is gone (a force-push, a gc)
        return False
    last = out.splitlines()[-1].split() if out else []
    return len(last) > 1 and last[1] == old
