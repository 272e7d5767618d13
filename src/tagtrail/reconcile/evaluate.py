"""Decide: every app's decision, the policy asked again with each fact it needs until it decides.

A registry that cannot be read for an app makes that app hold with the error as its reason, marked
transient or not: a failed read never leads to a write (DESIGN invariant 4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from tagtrail.config import Config
from tagtrail.errors import RegistryError
from tagtrail.policy import (
    AppPolicy,
    Decision,
    Facts,
    NeedAncestry,
    NeedCreated,
    NeedDigest,
    Reason,
    decide,
)
from tagtrail.reconcile.observe import Observer
from tagtrail.reconcile.outcome import Planned
from tagtrail.refs import Matcher
from tagtrail.registry import ImageRef
from tagtrail.registry.stats import counting
from tagtrail.scheme import rank
from tagtrail.targets.base import AppState

# Each round answers one need; a tie, an ancestry question and a digest take three. More means a
# registry changing under us.
MAX_ROUNDS = 8


def app_policy(config: Config, app: str) -> AppPolicy:
    return AppPolicy(
        tuple(config.deploy.branches_of(app)),
        config.deploy.min_age_of(app),
        config.deploy.cooldown,
        config.deploy.pins.get(app),
    )


@dataclass(frozen=True)
class Round:
    """What every app's decision in one evaluation shares."""

    config: Config
    matcher: Matcher
    observer: Observer
    now: datetime
    automatic: bool
    last_automatic: Mapping[str, datetime]
    prove: bool = False  # a deploy (not a plan): read each digest to write back by digest first


async def evaluate(run: Round, states: Mapping[str, AppState]) -> list[Planned]:
    """The decision for every app in `states`, with what the registry said about its target."""
    planned = list(await asyncio.gather(*(_app(run, state) for state in states.values())))
    shas = [p.decision.target.sha for p in planned if p.decision.target is not None]
    full = await run.observer.built_from(shas)
    for item in planned:
        target = item.decision.target
        item.built_from = full.get(target.sha) if target is not None and target.sha else None
    return planned


async def _app(run: Round, state: AppState) -> Planned:
    started = time.monotonic()
    repository = run.matcher.canonical(state.app)
    with counting() as requests:
        try:
            planned = await _decide(run, state, repository)
        except RegistryError as exc:
            hold = Decision(state.app, "hold", Reason.REGISTRY_ERROR, str(exc), state.running)
            planned = Planned(hold, repository, error=str(exc), transient=exc.transient)
    planned.requests = requests[0]
    planned.duration_ms = int((time.monotonic() - started) * 1000)
    return planned


async def _decide(run: Round, state: AppState, repository: str) -> Planned:
    config, observer = run.config, run.observer
    scheme = config.tag_scheme
    policy = app_policy(config, state.app)
    ref = ImageRef.parse(repository)
    tags = await observer.tags(ref)
    facts = Facts(
        rank(scheme, tags, policy.branches),
        run.now,
        ancestry={} if observer.source is not None else None,
        last_automatic=run.last_automatic.get(state.app),
        automatic=run.automatic,
        total_tags=len(tags),
    )
    for _ in range(MAX_ROUNDS):
        result = decide(state.app, scheme, policy, state.running, facts)
        if isinstance(result, Decision):
            if run.prove and result.action == "deploy" and result.digest is not None:
                await observer.prove(ref, result.digest)
            return Planned(result, repository, tags_seen=len(tags), created=dict(facts.created))
        facts = await answer(observer, ref, facts, result)
    raise RegistryError(ref.registry, ref.repository, "the order of its newest tags could not be settled")


async def answer(
    observer: Observer,
    ref: ImageRef,
    facts: Facts,
    need: NeedCreated | NeedAncestry | NeedDigest,
) -> Facts:
    """Facts with the answer to what the policy asked."""
    if isinstance(need, NeedCreated):
        created = await observer.created(ref, need.tags, facts.ranking.scheme)
        return replace(facts, created={**facts.created, **created})
    if isinstance(need, NeedAncestry):
        found = await observer.ancestry(need.pairs)
        return replace(facts, ancestry={**(facts.ancestry or {}), **found})
    digest = await observer.digest(ref, need.tag)
    return replace(facts, digests={**facts.digests, need.tag: digest})
