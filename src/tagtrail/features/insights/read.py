"""Reading what the measures need from git, fast: the deploy history from one `git log` (the trailers say
app, from, to, commit and reason), the files read only at commits without usable trailers (a hand edit, a
merge, a squash that joined several deploys), and every built commit's time in one `git cat-file --batch`.

`history.deploy_history` reads and parses every state (32 commits' files per git process): fine for the
last few changes a page shows, far too slow for ten thousand deploys.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tagtrail.adapters import trailers
from tagtrail.adapters.gitrepo import CommitInfo, GitRepo
from tagtrail.adapters.history import HistoryEntry, merged_message, refs_in
from tagtrail.adapters.refs import Matcher, Reference
from tagtrail.adapters.trailers import Trailers
from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.features.insights.measures import Built, Insights, ages, classify, measure, running_since

_LOG_FORMAT = "--format=%H%x1f%P%x1f%an <%ae>%x1f%cI%x1f%B%x1e"
_DEPENDABOT = re.compile(r"dependabot[/\[-]", re.IGNORECASE)
_ByApp = dict[str, list[Reference]]


@dataclass(frozen=True)
class Reading:
    """The deploy history, newest first, and how it was read."""

    entries: list[HistoryEntry]
    commits: int  # commits of the deploy files on the first-parent line
    from_trailers: int  # read from their trailers alone
    diffed: int  # read by comparing the files with the commit before


def read_history(repo: GitRepo, files: list[str], matcher: Matcher, rev: str = "HEAD") -> Reading:
    """Every change of an app's reference in `files`, newest first, as `history.deploy_history` gives it,
    on the first-parent line (a merged branch counts when its merge lands). Deploy times are commit dates:
    a rebased or cherry-picked deploy commit keeps its author date but reaches the branch at its commit
    date."""
    out = repo.run("log", "--first-parent", _LOG_FORMAT, rev, "--", *files)
    commits = []
    for raw in out.split("\x1e"):
        record = raw.strip("\n")
        if record:
            sha, parents, author, when, message = record.split("\x1f", 4)
            commits.append((sha, parents.split(" ")[0] if parents else "", author, when, message))
    read: list[list[HistoryEntry] | None] = []
    diff: dict[int, tuple[str, str]] = {}  # index → (commit, the state before it)
    for index, (sha, parent, author, when, message) in enumerate(commits):
        stated = trailers.parse(message) or trailers.parse(merged_message(repo, sha, message))
        read.append(_from_trailers(sha, datetime.fromisoformat(when), author, stated))
        if read[-1] is None:
            # the log lists only commits that touch the files, so the state before a commit is what the
            # next (older) logged commit left
            diff[index] = (sha, commits[index + 1][0] if index + 1 < len(commits) else parent)
    states = _states(repo, files, matcher, {rev for pair in diff.values() for rev in pair if rev})
    entries: list[HistoryEntry] = []
    for index, found in enumerate(read):
        if found is not None:
            entries.extend(found)
            continue
        sha, older = diff[index]
        _, _, author, when, _ = commits[index]
        entries.extend(
            _changes(sha, datetime.fromisoformat(when), author, states[sha], states.get(older, {}))
        )
    return Reading(entries, len(commits), len(commits) - len(diff), len(diff))


def _states(repo: GitRepo, files: list[str], matcher: Matcher, revs: set[str]) -> dict[str, _ByApp]:
    """The references at each of `revs`, every file read in one git process."""
    texts = repo.texts((rev, path) for rev in sorted(revs) for path in files)
    return {rev: refs_in({path: texts.get((rev, path)) for path in files}, matcher) for rev in revs}


def _from_trailers(
    sha: str, time: datetime, author: str, stated: list[Trailers]
) -> list[HistoryEntry] | None:
    """The changes a deploy commit's trailers state; None when they cannot be trusted alone: no trailers
    (a hand edit, a merge) or one app named twice (a squash of several deploys)."""
    apps = [app.app for app in stated]
    if not stated or len(set(apps)) != len(apps):
        return None
    entries = []
    for app in stated:
        if app.after is None:  # a pin or unpin that left the reference as it was
            continue
        name, _, digest = app.after.partition("@")
        tail = name.rsplit("/", 1)[-1]
        entries.append(
            HistoryEntry(
                sha,
                time,
                author,
                app.app,
                app.before,
                app.after,
                tail.split(":", 1)[1] if ":" in tail else None,
                digest or None,
                True,
                app.reason,
                app.actor,
                app.commit,
            )
        )
    return entries


def _changes(sha: str, time: datetime, author: str, after: _ByApp, before: _ByApp) -> list[HistoryEntry]:
    """What a commit without usable trailers changed, from the references before and after it."""
    entries = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if (old[0].current if old else None) == (new[0].current if new else None):
            continue
        first = new[0] if new else None
        entries.append(
            HistoryEntry(
                sha,
                time,
                author,
                name,
                old[0].current if old else None,
                first.current if first else None,
                first.tag if first else None,
                first.digest if first else None,
                False,
            )
        )
    return entries


def built_commits(source: GitRepo, entries: Sequence[HistoryEntry], scheme: Scheme) -> dict[str, Built]:
    """What the source repository says about every build's commit (the trailer's full sha, else the short
    sha in the tag), in one git process; commits it does not have are left out."""
    keys: set[str] = set()
    for entry in entries:
        parsed = scheme.parse(entry.tag) if entry.tag and not entry.built_from else None
        key = entry.built_from or (parsed.sha if isinstance(parsed, ParsedTag) else None)
        if key:
            keys.add(key)
    return {key: _built(info) for key, info in source.commits(sorted(keys)).items()}


def _built(info: CommitInfo) -> Built:
    return Built(info.time, bool(_DEPENDABOT.search(info.author) or _DEPENDABOT.search(info.message)))


def compute(
    reading: Reading,
    scheme: Scheme,
    built: Mapping[str, Built],
    *,
    since: timedelta,
    now: datetime,
    automatic: Collection[str] = (),
    behind: Mapping[str, int | None] | None = None,
    app: str | None = None,
) -> Insights:
    """The insights of the last `since` up to `now` (of one app with `app`)."""
    entries = [e for e in reading.entries if app is None or e.app == app]
    events = classify(entries, scheme, built, automatic=automatic)
    return measure(
        events,
        start=now - since,
        end=now,
        ages=ages(running_since(entries, scheme, built), now),
        behind={k: v for k, v in (behind or {}).items() if app is None or k == app},
    )
