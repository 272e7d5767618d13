"""The evidence an environment's gate asks for, read from the environment before it: what its target
declares (the build and digest it runs), and from its decision log since when that build has run there
rolled out and ready, and which builds failed there (rolled back by a person, or their rollout failed).

Where the cluster is observed (`kubernetes:` with a GitOps target), a build has run since its rollout was
seen complete (`follow`'s `rolled-out` row); otherwise since its deploy landed (the deploy commit, or the
cluster target's patch, which waits for its own rollout). Both are rows of the log, never a clock kept in
memory: a restart in the middle of a soak keeps its start. Read once per evaluation, and only when a gate
asks (a lane whose apps all run what the one before runs reads nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, timedelta
from typing import Any

from tagtrail.adapters.history import DecisionRecord
from tagtrail.domain.humanize import age
from tagtrail.domain.humanize import soak as duration
from tagtrail.domain.policy import Decision, Evidence, Facts, Gate, Reason, Running
from tagtrail.targets.project import Project

Reader = Callable[[str], Awaitable[Evidence]]


def evidence_reader(source: Project[Any]) -> Reader:
    """Each app's evidence from `source`, read in full at the first question and shared by the rest."""
    read: asyncio.Task[dict[str, Evidence]] | None = None

    async def of(app: str) -> Evidence:
        nonlocal read
        if read is None:
            read = asyncio.ensure_future(evidence(source))
        return (await read).get(app) or Evidence(None, None)

    return of


async def evidence(source: Project[Any]) -> dict[str, Evidence]:
    """What `source` says of every app it declares."""
    declared = await source.target.declared()
    rows = await asyncio.to_thread(source.log.outcomes)
    pins = {**source.config.deploy.pins, **(declared.pins or {})}
    observed = source.config.kubernetes is not None and not source.direct
    by_app: dict[str, list[DecisionRecord]] = {}
    for row in rows:
        by_app.setdefault(row.app, []).append(row)
    return {
        app: judged(state.running, by_app.get(app, ()), observed=observed, pinned=app in pins)
        for app, state in declared.states.items()
    }


def judged(
    running: Running, rows: Iterable[DecisionRecord], *, observed: bool, pinned: bool = False
) -> Evidence:
    """One app's evidence from its rows, newest first: the newest row that put what runs in place (its
    rollout seen complete, where `observed`), and each build whose newest word is a failure."""
    since = None
    failed: dict[str, str] = {}
    settled: set[str] = set()  # builds whose newest word was read: an older failure is history
    for row in rows:
        after, before = tag_of(row.target), tag_of(row.running)
        bad = _failure(row, after, before)
        if bad is not None and bad not in settled:
            failed[bad] = f"{row.sentence} ({row.actor}, {age(row.time)} ago)"
            settled.add(bad)
        landed = row.action == ("rollout" if observed else "deploy") and row.outcome in _LANDED
        if landed and after is not None and bad != after:
            settled.add(after)
            if since is None and after == running.tag and _digest(row.target) in (None, running.digest):
                since = row.time
    return Evidence(running.tag, running.digest, since, failed, pinned)


_LANDED = ("pushed", "committed", "rolled out")


def _failure(row: DecisionRecord, after: str | None, before: str | None) -> str | None:
    """The build a row says failed: the one a rollback left, or the one whose rollout failed."""
    if row.reason == Reason.ROLLBACK and row.action == "deploy":
        return before
    if row.reason == Reason.ROLLOUT_FAILED:
        return after if row.action == "rollout" else before
    return None


def tag_of(reference: str | None) -> str | None:
    """The tag of 'host/repo:tag@digest', 'tag@digest' or 'tag'."""
    if not reference:
        return None
    name = reference.partition("@")[0]
    tag = name.rsplit(":", 1)[-1]
    return None if "/" in tag or not tag else tag


def _digest(reference: str | None) -> str | None:
    return reference.partition("@")[2] or None if reference else None


def promotion(gate: Gate | None, facts: Facts, decision: Decision) -> tuple[str, str] | None:
    """A promotion's evidence, as its commit states it: the environment before, and there the digest,
    when it rolled out and how long it ran."""
    evidence = facts.evidence
    if gate is None or decision.reason != Reason.PROMOTED or evidence is None or evidence.since is None:
        return None
    ran = duration(facts.now - evidence.since)
    when = evidence.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return gate.source, f"{evidence.digest or decision.digest} rolled out {when}, soaked {ran}"


def soak_left(gate: Gate | None, facts: Facts, decision: Decision) -> timedelta | None:
    """How long until the soak that holds `decision` ends (serve looks again then), or None."""
    evidence = facts.evidence
    if gate is None or decision.reason != Reason.SOAKING or evidence is None or evidence.since is None:
        return None
    return max(timedelta(0), gate.soak - (facts.now - evidence.since))
