"""The deploy operations behind the CLI (and the controller): plan, deploy, status, history, rollback, pin,
unpin. Each reads the deploy files, asks the registry, lets the policy decide, writes through the GitOps
target, and records every decision in the decision log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tagtrail.config import Config
from tagtrail.config.edit import remove_pin, set_pin
from tagtrail.errors import GitError, TagtrailError
from tagtrail.gitrepo import GitRepo
from tagtrail.history import DecisionLog, DecisionRecord, HistoryEntry, default_log_path, deploy_history
from tagtrail.planner import AppState, Planned, matcher_for, plan, read_state
from tagtrail.policy import Decision, Running
from tagtrail.refs import Matcher, Target, rewrite
from tagtrail.registry import ImageRef, RegistryClient
from tagtrail.scheme import ParsedTag, rank
from tagtrail.targets.gitops import CommitOutcome, GitOpsTarget, WorkingCopy

SKIP_CI = "[skip ci]"


@dataclass
class Session:
    """One command's view of the project: the config, where it lives, and the decision log."""

    config: Config
    config_path: Path
    actor: str = "tagtrail"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    shared_client: RegistryClient | None = None  # the controller's, kept across reconciles
    keep_worktree: bool = False  # the controller's: one worktree reused by every deploy

    @property
    def root(self) -> Path:
        return self.config_path.parent

    @property
    def log(self) -> DecisionLog:
        path = self.config.deploy.decision_log
        return DecisionLog(Path(path).expanduser() if path else default_log_path())

    @property
    def target(self) -> GitOpsTarget:
        return GitOpsTarget(self.config, self.root, keep_worktree=self.keep_worktree)

    def source(self) -> GitRepo | None:
        """The repository the images are built from, for the ancestry guard (None: not a git repository)."""
        try:
            return GitRepo.discover(self.root)
        except GitError:
            return None

    def client(self) -> RegistryClient:
        return RegistryClient(self.config.registries)


@dataclass
class DeployReport:
    planned: list[Planned]
    outcome: CommitOutcome | None = None
    changed: list[str] = field(default_factory=list)  # apps whose references the commit changed
    files: dict[str, str] = field(default_factory=dict)  # path → new text (for --dry-run diffs)
    previous: dict[str, str | None] = field(default_factory=dict)


def _files(copy: WorkingCopy, paths: list[str]) -> dict[str, str | None]:
    return {path: copy.read(path) for path in paths}


def _select(states: dict[str, AppState], apps: list[str] | None) -> dict[str, AppState]:
    if not apps:
        return states
    unknown = [a for a in apps if a not in states]
    if unknown:
        known = ", ".join(states) or "none"
        raise TagtrailError(f"no reference to app '{unknown[0]}' in the deploy files (apps there: {known})")
    return {a: states[a] for a in apps}


async def _evaluate(
    session: Session,
    states: dict[str, AppState],
    *,
    automatic: bool,
    listed: Mapping[str, Awaitable[list[str]]] | None = None,
) -> list[Planned]:
    source = await asyncio.to_thread(session.source)
    async with contextlib.AsyncExitStack() as stack:  # a client of its own, unless the session shares one
        client = session.shared_client
        if client is None:
            client = await stack.enter_async_context(session.client())
        return await plan(
            session.config,
            states,
            client,
            source=source,
            last_automatic=session.log.last_automatic_deploy,
            automatic=automatic,
            now=session.now(),
            listed=listed,
        )


def _record(
    session: Session, planned: list[Planned], outcome: CommitOutcome | None, changed: list[str]
) -> None:
    log = session.log
    for item in planned:
        d = item.decision
        done = None
        if outcome is not None and d.app in changed:
            done = "pushed" if outcome.pushed else "committed"
        log.record(
            DecisionRecord(
                d.app,
                d.action,
                d.reason,
                d.sentence,
                _shown(d.running),
                item.target.reference if item.target else d.target_tag,
                session.actor,
                item.tags_seen,
                d.ignored,
                item.requests,
                item.duration_ms,
                outcome.commit if outcome is not None and d.app in changed else None,
                done,
            )
        )


def _shown(running: Running) -> str | None:
    if running.tag is None:
        return None
    return running.tag + (f"@{running.digest}" if running.digest else "")


async def plan_apps_async(
    session: Session, apps: list[str] | None = None, *, record: bool = True, automatic: bool = False
) -> list[Planned]:
    """What deploy would do, per app, without writing anything."""

    def read() -> dict[str, AppState]:
        with session.target.working_copy(for_commit=False) as copy:
            texts = _files(copy, session.target.files)
        return read_state(texts, matcher_for(session.config), session.config.tag_scheme)

    states = await asyncio.to_thread(read)
    planned = await _evaluate(session, _select(states, apps), automatic=automatic)
    if record:
        await asyncio.to_thread(_record, session, planned, None, [])
    return planned


def plan_apps(session: Session, apps: list[str] | None = None, *, record: bool = True) -> list[Planned]:
    return asyncio.run(plan_apps_async(session, apps, record=record))


async def deploy_async(
    session: Session,
    apps: list[str] | None = None,
    *,
    dry_run: bool = False,
    automatic: bool = False,
    skip_ci: bool | None = None,
) -> DeployReport:
    """Apply every pending update in one commit (see GitOpsTarget for retries and idempotency). The
    registry is read once; a retry after a rejected push re-checks the plan against the new files only."""
    config = session.config
    matcher = matcher_for(config)
    target = session.target
    report = DeployReport([])
    skip = config.deploy.git.skip_ci if skip_ci is None and config.deploy.git else bool(skip_ci)

    first: dict[str, dict[str, str | None]] = {}  # the files as planned on: the first attempt edits those

    def make_edits(copy: WorkingCopy) -> tuple[dict[str, str], str]:
        texts = first.pop("texts", None) or _files(copy, target.files)
        states = _select(read_state(texts, matcher, config.tag_scheme), apps)
        targets = _still_wanted(report.planned, states, config)
        edits, changed = _rewrite_all(texts, targets, matcher)
        report.changed = sorted(changed)
        report.previous = {app: states[app].shown for app in report.changed}
        report.files = edits
        return edits, _message(report, session.actor, skip)

    # Named apps and a long-lived client (the controller): list their tags while git fetches.
    listed: dict[str, asyncio.Future[Any]] = {}
    if apps and session.shared_client is not None:
        client = session.shared_client
        listed = {
            app: asyncio.ensure_future(client.list_tags(ImageRef.parse(matcher.canonical(app))))
            for app in apps
        }
    manager = target.working_copy(for_commit=not dry_run)
    try:
        copy = await asyncio.to_thread(manager.__enter__)
    except BaseException:
        await _discard(listed)
        raise
    try:
        texts = await asyncio.to_thread(_files, copy, target.files)
        first["texts"] = texts
        states = _select(read_state(texts, matcher, config.tag_scheme), apps)
        report.planned = await _evaluate(session, states, automatic=automatic, listed=listed)
        report.outcome, _ = await asyncio.to_thread(target.commit_loop, copy, make_edits, dry_run=dry_run)
    except BaseException as exc:
        await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__)
        raise
    finally:
        await _discard(listed)
    await asyncio.to_thread(manager.__exit__, None, None, None)
    if not dry_run:
        await asyncio.to_thread(_record, session, report.planned, report.outcome, report.changed)
    return report


async def _discard(tasks: Mapping[str, asyncio.Future[Any]]) -> None:
    """Tag lists asked for ahead that nobody used (an app not in the files, an error): let them go quietly."""
    for task in tasks.values():
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task


def deploy(
    session: Session,
    apps: list[str] | None = None,
    *,
    dry_run: bool = False,
    automatic: bool = False,
    skip_ci: bool | None = None,
) -> DeployReport:
    return asyncio.run(deploy_async(session, apps, dry_run=dry_run, automatic=automatic, skip_ci=skip_ci))


def _still_wanted(planned: list[Planned], states: dict[str, AppState], config: Config) -> dict[str, Target]:
    """Targets still worth writing on the files as they are now: after a rejected push, someone else may
    have deployed the same build, or a newer one, in the meantime (never move an app backwards)."""
    scheme = config.tag_scheme
    wanted = {}
    for item in planned:
        target = item.target
        state = states.get(item.app)
        if target is None or state is None:
            continue
        if state.running.tag == target.tag and state.running.digest == target.digest:
            continue
        now, new = scheme.parse(state.running.tag or ""), scheme.parse(target.tag)
        if (
            item.decision.reason not in ("pinned", "rollback")
            and isinstance(now, ParsedTag)
            and isinstance(new, ParsedTag)
            and now.instants
            and new.instants
            and min(now.instants) > max(new.instants)
        ):
            continue
        wanted[item.app] = target
    return wanted


def _rewrite_all(
    texts: dict[str, str | None], targets: dict[str, Target], matcher: Matcher
) -> tuple[dict[str, str], set[str]]:
    edits: dict[str, str] = {}
    changed: set[str] = set()
    if not targets:
        return edits, changed
    for path, text in texts.items():
        if text is None:
            continue
        new, refs = rewrite(path, text, matcher, targets)
        if new != text:
            edits[path] = new
            changed.update(r.app for r in refs)
    return edits, changed


def _message(report: DeployReport, actor: str, skip_ci: bool, *, verb: str = "deploy") -> str:
    by_app = {p.app: p for p in report.planned}
    apps = report.changed
    names = ", ".join(f"{a} {by_app[a].decision.target_tag or ''}".strip() for a in apps)
    subject = f"{verb}: {names}" if len(names) <= 60 else f"{verb}: {len(apps)} apps"
    if skip_ci:
        subject += f" {SKIP_CI}"
    body = []
    trailers = []
    for app in apps:
        item = by_app[app]
        target = item.target
        if target is None:
            continue
        before = report.previous.get(app)
        built = item.built_from or "?"
        body.append(
            f"{app}: {before or 'nothing'}\n  → {target.reference}\n  built from commit {built}; {item.decision.sentence}"
        )
        trailers += [
            f"Tagtrail-App: {app}",
            f"Tagtrail-From: {before or 'none'}",
            f"Tagtrail-To: {target.reference}",
            f"Tagtrail-Commit: {built}",
            f"Tagtrail-Reason: {item.decision.reason}",
            f"Tagtrail-Actor: {actor}",
        ]
    return subject + "\n\n" + "\n\n".join(body) + "\n\n" + "\n".join(trailers) + "\n"


# Status and history -----------------------------------------------------------------------------------


@dataclass
class AppStatus:
    app: str
    planned: Planned
    pinned: str | None
    last_deploy: HistoryEntry | None
    last_decision: DecisionRecord | None


def status(session: Session, apps: list[str] | None = None) -> list[AppStatus]:
    """What git declares for each app, the newest eligible build, how far behind, pins, the last deploy."""
    planned = plan_apps(session, apps, record=False)
    with session.target.working_copy(for_commit=False) as copy:
        history = deploy_history(copy.repo, session.target.files, matcher_for(session.config))
    log = session.log
    result = []
    for item in planned:
        last = next((h for h in history if h.app == item.app), None)
        result.append(
            AppStatus(item.app, item, session.config.deploy.pins.get(item.app), last, log.last(item.app))
        )
    return result


def history(session: Session, app: str) -> list[HistoryEntry]:
    with session.target.working_copy(for_commit=False) as copy:
        entries = deploy_history(copy.repo, session.target.files, matcher_for(session.config), app)
        if not entries:
            states = read_state(
                _files(copy, session.target.files), matcher_for(session.config), session.config.tag_scheme
            )
            if app not in states:
                raise TagtrailError(f"no reference to app '{app}' in the deploy files")
    return entries


# Rollback, pin, unpin --------------------------------------------------------------------------------


def _resolve_to(session: Session, app: str, to: str, branches: tuple[str, ...]) -> str:
    """A tag of the scheme as given, or the newest build of the commit a (short) sha names."""
    scheme = session.config.tag_scheme
    parsed = scheme.parse(to)
    if isinstance(parsed, ParsedTag):
        return to
    if not (4 <= len(to) <= 64 and all(c in "0123456789abcdef" for c in to.lower())):
        raise TagtrailError(f"'{to}' is neither a tag of the scheme ({scheme.example}) nor a commit sha")
    sha = to.lower()

    async def lookup() -> list[str]:
        async with session.client() as client:
            return await client.list_tags(ImageRef.parse(matcher_for(session.config).canonical(app)))

    ranking = rank(scheme, asyncio.run(lookup()), branches)
    for tag in ranking.newest_first:
        build = ranking.parse(tag)
        if isinstance(build, ParsedTag) and (
            sha.startswith(build.sha) if len(sha) >= len(build.sha) else build.sha.startswith(sha)
        ):
            return tag
    raise TagtrailError(f"no build of commit {to} on {', '.join(branches)} in the registry for {app}")


def _pin_commit(session: Session, app: str, tag: str | None, reason: str, *, deploy_it: bool) -> DeployReport:
    """One commit that writes `tag` for `app` (when `deploy_it`) and sets (or, with tag None, removes) its pin."""
    config = session.config
    matcher = matcher_for(config)
    report = DeployReport([])
    target_cache: dict[str, Target] = {}

    def make_edits(copy: WorkingCopy) -> tuple[dict[str, str], str]:
        texts = _files(copy, session.target.files)
        states = read_state(texts, matcher, config.tag_scheme)
        if app not in states:
            raise TagtrailError(f"no reference to app '{app}' in the deploy files")
        edits: dict[str, str] = {}
        if deploy_it and tag is not None:
            if app not in target_cache:
                target_cache[app] = _target_for(session, app, tag)
            target = target_cache[app]
            decision = Decision(
                app,
                "deploy",
                reason,
                f"{reason} to {tag}",
                states[app].running,
                None,
                ParsedTag(tag, "", "", ()),
            )
            item = Planned(decision, target.repository, target.digest, _built(session, tag))
            report.planned = [item]
            edits, changed = _rewrite_all(texts, {app: target}, matcher)
            report.changed = sorted(changed) or [app]
            report.previous = {app: states[app].shown}
        config_rel = _config_in(copy, session)
        current = copy.read(config_rel) or ""
        new_config = (
            set_pin(current, app, tag, config_rel)
            if tag is not None
            else remove_pin(current, app, config_rel)
        )
        if new_config != current:
            edits[config_rel] = new_config
        if not edits:
            return {}, ""
        if not report.planned:
            return (
                edits,
                f"unpin: {app}\n\nAutomatic deploys of {app} resume.\n\nTagtrail-App: {app}\nTagtrail-Reason: unpin\n",
            )
        return edits, _message(report, session.actor, False, verb=reason)

    report.outcome, _ = session.target.apply(make_edits)
    if report.planned:
        _record(session, report.planned, report.outcome, report.changed)
    return report


def _config_in(copy: WorkingCopy, session: Session) -> str:
    """Where tagtrail.yaml is in the working copy: pins live in git, next to what they hold."""
    try:
        source_root = GitRepo.discover(session.root).root
        relative = session.config_path.resolve().relative_to(source_root.resolve())
    except (GitError, ValueError):
        raise TagtrailError(
            "tagtrail.yaml is not inside a git repository, so a pin cannot be committed"
        ) from None
    if copy.read(relative.as_posix()) is None:
        raise TagtrailError(
            f"pins live in tagtrail.yaml, which must be at {relative} in the deploy repository (deploy.git.url)"
        )
    return relative.as_posix()


def _target_for(session: Session, app: str, tag: str) -> Target:
    repository = matcher_for(session.config).canonical(app)

    async def head() -> str:
        async with session.client() as client:
            return (await client.head(ImageRef.parse(repository).with_tag(tag))).digest

    return Target(repository, tag, asyncio.run(head()))


def _built(session: Session, tag: str) -> str | None:
    parsed = session.config.tag_scheme.parse(tag)
    if not isinstance(parsed, ParsedTag):
        return None
    source = session.source()
    return (source.resolve(parsed.sha) if source else None) or parsed.sha


def rollback(session: Session, app: str, to: str | None) -> DeployReport:
    """Deploy an earlier build of `app` (a tag, a commit, or the previous entry of its history) and pin it."""
    branches = tuple(session.config.deploy.branches_of(app))
    scheme = session.config.tag_scheme
    tokens = {scheme.branch_token(b) for b in branches}
    if to is None:
        entries = history(session, app)
        current = entries[0].tag if entries else None
        earlier = [e.tag for e in entries[1:] if e.tag and e.tag != current]
        eligible = [t for t in earlier if isinstance(p := scheme.parse(t), ParsedTag) and p.branch in tokens]
        if not eligible:
            raise TagtrailError(
                f"{app} has no earlier deploy of a build of {', '.join(branches)} in the history of the deploy files;"
                " pass --to TAG|SHA"
            )
        tag = eligible[0]
    else:
        tag = _resolve_to(session, app, to, branches)
    parsed = scheme.parse(tag)
    if not isinstance(parsed, ParsedTag) or parsed.branch not in tokens:
        raise TagtrailError(
            f"'{tag}' is not a build of {', '.join(branches)}: only eligible builds are ever deployed"
        )
    return _pin_commit(session, app, tag, "rollback", deploy_it=True)


def pin(session: Session, app: str, tag: str) -> DeployReport:
    return _pin_commit(session, app, tag, "pin", deploy_it=True)


def unpin(session: Session, app: str) -> DeployReport:
    if app not in session.config.deploy.pins:
        raise TagtrailError(f"{app} is not pinned")
    return _pin_commit(session, app, None, "unpin", deploy_it=False)
