"""Gather the facts the policy needs, app by app, and turn its decisions into targets to write.

What runs comes from the deploy files; the candidates from the registry (one tag list per app, a config
fetch only when times tie, one HEAD for the winner's digest); ancestry from the source repository when it
is at hand. A registry that cannot be read for an app makes that app hold with the error as its reason:
a failed read never leads to a write (DESIGN invariant 4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tagtrail.config import Config
from tagtrail.errors import RegistryError
from tagtrail.gitrepo import GitRepo
from tagtrail.policy import AppPolicy, Decision, Facts, NeedCreated, Running, decide
from tagtrail.refs import Matcher, Reference, Target, find
from tagtrail.registry import ImageRef, RegistryClient
from tagtrail.registry.stats import counting
from tagtrail.scheme import ParsedTag, Scheme, rank

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AppState:
    """What the deploy files say about one app: every reference, and what runs by them."""

    app: str
    refs: tuple[Reference, ...]
    running: Running
    shown: str | None = None  # the running reference as the file writes it (name:tag@digest)


@dataclass
class Planned:
    """A decision with what the registry said about its target."""

    decision: Decision
    repository: str
    digest: str | None = None
    built_from: str | None = None
    requests: int = 0
    duration_ms: int = 0
    error: str | None = None
    tags_seen: int = 0
    created: dict[str, datetime] = field(default_factory=dict)

    @property
    def app(self) -> str:
        return self.decision.app

    @property
    def target(self) -> Target | None:
        tag = self.decision.target_tag
        if self.decision.action != "deploy" or tag is None or self.digest is None:
            return None
        return Target(self.repository, tag, self.digest)


def matcher_for(config: Config) -> Matcher:
    return Matcher.from_config(config)


def read_state(files: dict[str, str | None], matcher: Matcher, scheme: Scheme) -> dict[str, AppState]:
    """Each app's references in the deploy files. Where references disagree, the newest readable build is
    what runs (so a hand-made newer reference is never taken for older)."""
    by_app: dict[str, list[Reference]] = {}
    for path, text in files.items():
        if text is None:
            continue
        for ref in find(path, text, matcher):
            by_app.setdefault(ref.app, []).append(ref)
    states = {}
    for app, refs in sorted(by_app.items()):
        readable = [
            (p, r) for r in refs if r.tag and isinstance(p := scheme.parse(r.tag), ParsedTag) and p.instants
        ]
        if readable:
            _, best = max(readable, key=lambda pr: max(pr[0].instants))
        else:
            best = refs[0]
        states[app] = AppState(app, tuple(refs), Running(best.tag, best.digest), best.current)
    return states


def app_policy(config: Config, app: str) -> AppPolicy:
    return AppPolicy(
        tuple(config.deploy.branches_of(app)),
        config.deploy.min_age_of(app),
        config.deploy.cooldown,
        config.deploy.pins.get(app),
    )


async def plan(
    config: Config,
    states: dict[str, AppState],
    client: RegistryClient,
    *,
    source: GitRepo | None = None,
    last_automatic: Callable[[str], datetime | None] | None = None,
    automatic: bool = False,
    now: datetime,
    listed: Mapping[str, Awaitable[list[str]]] | None = None,
) -> list[Planned]:
    """The decision for every app in `states`, with its target's digest. `listed` holds tag lists already
    asked for (the controller lists while git fetches)."""
    run = _Run(config, client, source, last_automatic, automatic, now)
    return list(
        await asyncio.gather(
            *(_plan_app(run, state, (listed or {}).get(state.app)) for state in states.values())
        )
    )


@dataclass(frozen=True)
class _Run:
    """What every app's planning in one `plan` shares."""

    config: Config
    client: RegistryClient
    source: GitRepo | None
    last_automatic: Callable[[str], datetime | None] | None
    automatic: bool
    now: datetime


async def _plan_app(run: _Run, state: AppState, listed: Awaitable[list[str]] | None) -> Planned:
    started = time.monotonic()
    repository = matcher_for(run.config).canonical(state.app)
    ref = ImageRef.parse(repository)
    with counting() as requests:
        try:
            planned = await _decide(run, state, ref, listed)
        except RegistryError as exc:
            hold = Decision(state.app, "hold", "registry-error", str(exc), state.running)
            planned = Planned(hold, repository, error=str(exc))
    planned.requests = requests[0]
    planned.duration_ms = int((time.monotonic() - started) * 1000)
    target, source = planned.decision.target, run.source
    if target is not None and source is not None and target.sha:
        planned.built_from = source.resolve(target.sha) or target.sha
    elif target is not None:
        planned.built_from = target.sha or None
    return planned


async def _decide(run: _Run, state: AppState, ref: ImageRef, listed: Awaitable[list[str]] | None) -> Planned:
    config, client, source = run.config, run.client, run.source
    scheme = config.tag_scheme
    policy = app_policy(config, state.app)
    tags = await (listed if listed is not None else client.list_tags(ref))
    facts = Facts(
        rank(scheme, tags, policy.branches),
        run.now,
        {},
        source.is_strict_ancestor if source is not None else None,
        run.last_automatic(state.app) if run.last_automatic else None,
        run.automatic,
        len(tags),
    )
    for _ in range(4):  # each round settles one tie; more would mean a registry changing under us
        decision = decide(state.app, scheme, policy, state.running, facts)
        if not isinstance(decision, NeedCreated):
            break
        created = dict(facts.created)
        created.update(await _created(client, ref, decision.tags, scheme))
        facts = replace(facts, created=created)
    else:
        raise RegistryError(ref.registry, ref.repository, "the order of its newest tags could not be settled")
    planned = Planned(
        decision, matcher_for(config).canonical(state.app), tags_seen=len(tags), created=dict(facts.created)
    )
    target = decision.target_tag
    if decision.action == "nothing" and target and state.running.digest is None:
        # Up to date by tag, but the files do not pin the digest: pin it (what runs is what was chosen).
        planned.decision = replace(
            decision,
            action="deploy",
            reason="pin-digest",
            sentence=f"{target} is current; pinning its digest",
        )
    if planned.decision.action == "deploy" and target:
        planned.digest = (await client.head(ref.with_tag(target))).digest
        if target == state.running.tag and planned.digest == state.running.digest:
            planned.decision = replace(
                planned.decision,
                action="nothing",
                reason="up-to-date",
                sentence=f"{target} is already deployed",
            )
    return planned


async def _created(
    client: RegistryClient, ref: ImageRef, tags: Iterable[str], scheme: Scheme
) -> dict[str, datetime]:
    """The `created` time of each image; the time in its tag when the image does not say."""

    async def one(tag: str) -> tuple[str, datetime]:
        config = await client.image_config(ref.with_tag(tag))
        if config.created is not None:
            return tag, config.created
        parsed = scheme.parse(tag)
        fallback = max(parsed.instants) if isinstance(parsed, ParsedTag) and parsed.instants else _EARLIEST
        return tag, fallback

    return dict(await asyncio.gather(*(one(t) for t in tags)))
