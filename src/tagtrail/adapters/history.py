"""Deploy history (the git log of the deploy files) and the decision log (a table of the SQLite store).

The git log is the deploy history: every change of an app's reference in the deploy files, made by tagtrail
(its commits carry `Tagtrail-*` trailers) or by a person ("manual"). The decision log keeps every plan and
deploy evaluation with its reason, candidates and cost in one embedded SQLite file; losing that file loses no
deploy history, only the record of why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tagtrail.adapters import trailers
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.refs import Matcher, Reference, find
from tagtrail.adapters.store import Row, Store, Transaction
from tagtrail.config.environments import DEFAULT
from tagtrail.errors import GitError, RefsError


@dataclass(frozen=True)
class HistoryEntry:
    """One change of an app's reference in the deploy files."""

    commit: str
    time: datetime
    author: str
    app: str
    before: str | None
    after: str | None
    tag: str | None
    digest: str | None
    by_tagtrail: bool
    reason: str | None = None
    actor: str | None = None
    built_from: str | None = None

    @property
    def actor_name(self) -> str:
        return self.actor or ("tagtrail" if self.by_tagtrail else f"manual ({self.author})")


_Refs = list[Reference]
Known = Callable[[str, str], Sequence[Reference] | None]  # (path, text) → its references, where known


_READ_AHEAD = 32  # commits whose deploy files one git process reads


def _reader(
    repo: GitRepo, files: list[str], matcher: Matcher, revs: list[str], known: Known | None = None
) -> Callable[[str], dict[str, _Refs]]:
    """The references at a rev of `revs`, the files of it and of the next revs read in one git process
    (`cat-file --batch`) rather than one `git show` per file and commit."""
    position = {rev: index for index, rev in enumerate(revs)}
    texts: dict[tuple[str, str], str | None] = {}

    def refs_at(rev: str) -> dict[str, _Refs]:
        if not rev:
            return {}
        if any((rev, path) not in texts for path in files):
            start = position.get(rev)
            chunk = [rev] if start is None else revs[start : start + _READ_AHEAD]
            texts.update(repo.texts((r, path) for r in chunk if r for path in files))
        return refs_in({path: texts.get((rev, path)) for path in files}, matcher, known)

    return refs_at


def refs_in(
    texts: Mapping[str, str | None], matcher: Matcher, known: Known | None = None
) -> dict[str, _Refs]:
    """The references in the deploy files' texts, by app (a file that is missing or does not parse says
    nothing). `known`: the references of a text already found (None: not known), not searched again."""
    by_app: dict[str, _Refs] = {}
    for path, text in texts.items():
        if text is None:
            continue
        try:
            refs = (known(path, text) if known else None) or find(path, text, matcher)
        except RefsError:
            continue  # a commit where the file did not parse says nothing about what ran
        for ref in refs:
            by_app.setdefault(ref.app, []).append(ref)
    return by_app


def _summary(refs: list[Reference] | None) -> tuple[str | None, str | None, str | None]:
    if not refs:
        return None, None, None
    first = refs[0]
    return first.current, first.tag, first.digest


def deploy_history(
    repo: GitRepo,
    files: list[str],
    matcher: Matcher,
    app: str | None = None,
    rev: str = "HEAD",
    limit: int | None = None,
    until: Collection[str] | None = None,
    known: Known | None = None,
) -> list[HistoryEntry]:
    """Every change of the reference of `app` (or of every app) in the deploy files, newest first. With
    `until`, reading stops once each of those apps has its newest change (what the dashboard shows)."""
    entries = []
    missing = set(until) if until is not None else None
    commits = repo.log(files, rev)
    revs = [c[0] for c in commits] + [commits[-1][1] if commits else ""]
    refs_at = _reader(repo, files, matcher, revs, known)
    after: dict[str, _Refs] | None = None
    for index, (sha, parent, author, when, message) in enumerate(commits):
        # the log follows first parents and only commits that touch the files, so what a commit's parent
        # holds is what the next (older) logged commit left: each state is read once
        after = after if after is not None else refs_at(sha)
        older = commits[index + 1][0] if index + 1 < len(commits) else parent
        before = refs_at(older)
        stated = {
            t.app: t for t in trailers.parse(message) or trailers.parse(merged_message(repo, sha, message))
        }
        for name in sorted(set(before) | set(after)):
            if app is not None and name != app:
                continue
            old, new = _summary(before.get(name)), _summary(after.get(name))
            if old[0] == new[0]:
                continue
            group = stated.get(name)
            entries.append(
                HistoryEntry(
                    sha,
                    datetime.fromisoformat(when),
                    author,
                    name,
                    old[0],
                    new[0],
                    new[1],
                    new[2],
                    group is not None,
                    group.reason if group else None,
                    group.actor if group else None,
                    group.commit if group else None,
                )
            )
            if limit is not None and len(entries) >= limit:
                return entries
            if missing is not None:
                missing.discard(name)
        if missing is not None and not missing:
            return entries
        after = before
    return entries


def merged_message(repo: GitRepo, sha: str, message: str) -> str:
    """The message of the branch commit a merge commit brought in (its second parent): a pull request
    merged with a merge commit as GitHub words it ("Merge pull request #N from …") tells the deploy only
    there. Empty for any other commit (asked of git only for a merge's message)."""
    if not message.startswith("Merge "):
        return ""
    try:
        return repo.run("log", "-1", "--format=%B", f"{sha}^2")
    except GitError:  # not a merge after all
        return ""


# The decision log -------------------------------------------------------------------------------------


@dataclass
class DecisionRecord:
    """One evaluation of one app: what ran, what was chosen, why, and what it cost."""

    app: str
    action: str
    reason: str
    sentence: str
    running: str | None
    target: str | None
    actor: str
    candidates: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    duration_ms: int = 0
    commit: str | None = None
    outcome: str | None = None  # what the deploy did: committed, pushed, failed: …
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    automatic: bool = False  # made by the controller on its own (the cooldown counts these)


def default_log_path() -> Path:
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state")
    return state / "tagtrail" / "decisions.sqlite"


_LOG = "the decision log"
# DecisionRecord's fields, in its order
_COLUMNS = (
    'app, action, reason, sentence, running, target, actor, candidates, ignored, requests, duration_ms, "commit",'
    " outcome, time, automatic"
)


class DecisionLog:
    """The decision log of one environment, a table of the SQLite store that every environment shares
    (each row names its own). A log that cannot be written is a warning, never a failed deploy: the deploy
    history is in git. A decision that repeats the app's last one (a poll that changed nothing) moves that
    row's time instead of adding a row."""

    def __init__(self, path: Path, environment: str = DEFAULT) -> None:
        self.path = path
        self.environment = environment
        self._store = Store(path)

    def of(self, environment: str) -> DecisionLog:
        """The log of another environment, in the same file."""
        return DecisionLog(self.path, environment)

    def record(self, *entries: DecisionRecord) -> None:
        """Add decisions, in one transaction."""

        def insert(tx: Transaction) -> None:
            for entry in entries:
                _insert(tx, entry, self.environment)

        self._store.write(insert, what=_LOG, failing="; the deploy history in git is unaffected")

    def recent(self, app: str | None = None, limit: int = 20) -> list[DecisionRecord]:
        """The newest decisions, of one app or of all, newest first; empty if the log is unreadable."""
        args: tuple[object, ...]
        if app:
            query, args = "AND app = ? ORDER BY id DESC LIMIT ?", (app, limit)
        else:
            query, args = "ORDER BY id DESC LIMIT ?", (limit,)
        return self._select(query, args)

    def _select(self, where: str, args: tuple[object, ...]) -> list[DecisionRecord]:
        """The records of this environment's rows that `where` (a clause after its own) picks; empty when
        there is no log yet or it cannot be read."""
        # this module's clauses; values bound
        query = f"SELECT {_COLUMNS} FROM decisions WHERE environment = ? {where}"  # noqa: S608
        return [_record(row) for row in self._store.read(query, (self.environment, *args), what=_LOG)]

    def last_each(self, *, acted: bool = False) -> dict[str, DecisionRecord]:
        """Each app's newest decision (with `acted`, its newest that did something), in one query."""
        query = (
            "AND id IN (SELECT MAX(id) FROM decisions WHERE environment = ? AND outcome IS NOT NULL"
            " GROUP BY app)"
            if acted
            else "AND id IN (SELECT MAX(id) FROM decisions WHERE environment = ? GROUP BY app)"
        )
        return {record.app: record for record in self._select(query, (self.environment,))}

    def outcomes(self, limit: int = 5000) -> list[DecisionRecord]:
        """The newest decisions that did something (deploys, rollbacks, rollouts followed), newest first, in
        one query: what the environment after this one reads as evidence."""
        return self._select("AND outcome IS NOT NULL ORDER BY id DESC LIMIT ?", (limit,))

    def last_applies(self) -> dict[str, DecisionRecord]:
        """Each app's newest judgement of whether its deploy commit was applied (deploy.git.applied_by: action
        `apply`), in one query."""
        query = (
            "AND id IN (SELECT MAX(id) FROM decisions WHERE environment = ? AND action = 'apply'"
            " GROUP BY app)"
        )
        return {record.app: record for record in self._select(query, (self.environment,))}

    def applied_commits(self) -> dict[str, datetime]:
        """When deploy.git.applied_by first said each deploy commit was applied (insights' lead time ends
        there), in one query; empty when there is no log."""
        rows = self._store.read(
            "SELECT \"commit\", MIN(time) FROM decisions WHERE environment = ? AND action = 'apply'"
            ' AND reason = \'applied\' AND "commit" IS NOT NULL GROUP BY "commit"',
            (self.environment,),
            what=_LOG,
        )
        return {str(commit): datetime.fromisoformat(str(time)) for commit, time in rows}

    def last(self, app: str) -> DecisionRecord | None:
        found = self.recent(app, 1)
        return found[0] if found else None

    def last_automatic_deploys(self) -> dict[str, datetime]:
        """When the controller last deployed each app on its own (the cooldown), in one query."""
        found = self._select(
            "AND id IN (SELECT MAX(id) FROM decisions WHERE environment = ? AND automatic = 1"
            " AND action = 'deploy' AND \"commit\" IS NOT NULL GROUP BY app)",
            (self.environment,),
        )
        return {record.app: record.time for record in found}

    def digests_seen(self, limit: int = 20_000) -> dict[str, str]:
        """The first digest recorded for each chosen image ("registry/repo:tag" → digest) among the newest
        `limit` decisions: a tag never legitimately moves, so one that did shows against these."""
        rows = self._store.read(
            "SELECT target FROM decisions WHERE target LIKE '%@sha256:%' ORDER BY id DESC LIMIT ?",
            (limit,),
            what=_LOG,
        )
        seen: dict[str, str] = {}
        for (target,) in reversed(rows):  # oldest first: the first digest recorded is the one kept
            name, _, digest = str(target).partition("@")
            seen.setdefault(name, digest)
        return seen

    def automatic_rollback_commits(self) -> set[str]:
        """The deploy commits of rollbacks the controller made on its own (delivery insights count them
        apart from a person's), in one query; empty when there is no log."""
        found = self._select(
            "AND automatic = 1 AND reason = 'rollback' AND \"commit\" IS NOT NULL",
            (),
        )
        return {record.commit for record in found if record.commit}


def _record(row: Row) -> DecisionRecord:
    """A row of `_COLUMNS` as its record."""
    (app, action, reason, sentence, running, target, actor) = row[:7]
    (candidates, ignored, requests, duration_ms, commit, outcome, time, automatic) = row[7:]
    return DecisionRecord(
        app,
        action,
        reason,
        sentence,
        running,
        target,
        actor,
        candidates,
        json.loads(ignored),
        requests,
        duration_ms,
        commit,
        outcome,
        datetime.fromisoformat(time),
        bool(automatic),
    )


def _insert(tx: Transaction, entry: DecisionRecord, environment: str) -> None:
    data = asdict(entry)
    data["environment"] = environment
    data["time"] = entry.time.astimezone(UTC).isoformat()
    data["ignored"] = json.dumps(entry.ignored, sort_keys=True)
    data["automatic"] = int(entry.automatic)
    data["reason"] = str(entry.reason)
    if entry.commit is None and entry.outcome is None:
        # the same decision as last time (a poll that changed nothing): say when it was last made instead
        # of adding a row, so a controller polling every few minutes keeps a short log
        same = tx.run(
            "UPDATE decisions SET time = :time, requests = :requests, duration_ms = :duration_ms,"
            " sentence = :sentence WHERE id = (SELECT MAX(id) FROM decisions WHERE app = :app"
            " AND environment = :environment)"
            " AND action = :action AND reason = :reason AND running IS :running AND target IS :target"
            ' AND actor = :actor AND "commit" IS NULL AND outcome IS NULL',
            data,
        )
        if same:
            return
    tx.run(
        "INSERT INTO decisions (time, app, action, reason, sentence, running, target, actor, candidates,"
        ' ignored, requests, duration_ms, "commit", outcome, automatic, environment) VALUES (:time, :app,'
        " :action, :reason, :sentence, :running, :target, :actor, :candidates, :ignored, :requests,"
        " :duration_ms, :commit, :outcome, :automatic, :environment)",
        data,
    )
