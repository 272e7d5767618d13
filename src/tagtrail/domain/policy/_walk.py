"""The walk over an app's candidates, newest first: the newest that passes every guard (older than what
runs, soak time, a tag's claims, ancestry, the winner's digest and revision), or the fact it needs first.
`Context` is what one decision has learned on the way: what runs, the facts, what was skipped and why."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tagtrail.domain import provenance
from tagtrail.domain.policy import _gate as gate
from tagtrail.domain.policy._gate import Gated
from tagtrail.domain.policy._values import (
    Action,
    AppPolicy,
    Decision,
    Facts,
    Need,
    NeedAncestry,
    NeedCreated,
    Running,
)
from tagtrail.domain.provenance import NeedCommit, Refusal
from tagtrail.domain.reasons import Reason
from tagtrail.domain.scheme import Candidates, ParsedTag
from tagtrail.domain.scheme import ranking as order

ANCESTRY_BATCH = 16  # ancestry questions of one app's first round; the rest only if those are ancestors


@dataclass
class Context:
    """One decision in the making: what runs, the facts, and each candidate skipped and why."""

    app: str
    running: Running
    current: ParsedTag | None
    facts: Facts
    ignored: Counter[str]
    branch_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tag token → branches
    refusals: list[Refusal] = field(default_factory=list)
    gated: Gated = field(default_factory=Gated)  # what an environment's gate said of the candidates

    def refuse(self, refusal: Refusal, *, first: bool = False) -> None:
        self.ignored[refusal.code] += 1
        self.refusals.insert(0 if first else len(self.refusals), refusal)

    def decision(
        self,
        action: Action,
        reason: Reason,
        sentence: str,
        target: ParsedTag | None = None,
        behind: int | None = None,
        *,
        tag: str | None = None,
    ) -> Decision:
        ignored = {k: v for k, v in self.ignored.items() if v}
        target_tag = tag or (target.tag if target else None)
        digest = self.facts.digests.get(target_tag) if target_tag else None
        return Decision(
            self.app,
            action,
            reason,
            sentence,
            self.running,
            self.current,
            target,
            target_tag,
            digest,
            ignored,
            self.facts.total_tags,
            behind,
            tuple(self.refusals),
        )


def candidates(ctx: Context) -> Candidates | NeedCreated:
    """Eligible, readable tags, newest first (read only as far as they are looked at); the top ones ordered
    by `created` when their times tie."""
    ordered = Candidates(ctx.facts.ranking, ctx.ignored)
    top = next(iter(ordered), None)
    if top is None:
        return ordered
    tied = list(ordered.until(lambda p: not order.overlaps(p, top)))
    if len(tied) > 1 or top.ambiguous:
        unknown = tuple(p.tag for p in tied if p.tag not in ctx.facts.created)
        if unknown:
            return NeedCreated(unknown)
        tied.sort(key=lambda p: (ctx.facts.created[p.tag], p.tag), reverse=True)
        ordered.reorder(tied)
    return ordered


# one branch per guard: the walk reads as the list of guards, in the order they are asked
def first_acceptable(  # noqa: PLR0912
    ctx: Context, ordered: Candidates, policy: AppPolicy
) -> ParsedTag | Need | None:
    """The newest candidate that passes every guard, the running tag itself, or None."""
    for candidate in ordered:
        if candidate.tag == ctx.running.tag:
            return candidate
        older = order.older(candidate, ctx.current, ctx.facts.created)
        if older is None and ctx.current is not None:  # equal times: only `created` can tell
            return NeedCreated(
                tuple(t for t in (candidate.tag, ctx.current.tag) if t not in ctx.facts.created)
            )
        if older:
            ctx.ignored["older-than-running"] += 1
            continue
        if policy.gate is not None:  # an environment after another: only what ran well there
            shut = gate.closed(ctx.gated, candidate, policy.gate, ctx.facts, ctx.app)
            if shut is True:
                continue
            if shut is not False:
                return shut
        claims = ctx.facts.claims
        screened = provenance.screen(candidate, ctx.branch_names, claims, ctx.facts.now)
        future = isinstance(screened, Refusal) and screened.code is Reason.DATED_IN_THE_FUTURE
        if not future and candidate.instants and max(candidate.instants) > ctx.facts.now - policy.min_age:
            ctx.ignored["too-young"] += 1
            continue
        if isinstance(screened, NeedCommit):  # every newer candidate's commit at once: one fetch
            return provenance.commit_needs(
                itertools.chain([candidate], newer(ordered, ctx.current)), ctx.branch_names, claims
            )
        if screened is not None:
            ctx.refuse(screened)
            continue
        current, ancestry = ctx.current, ctx.facts.ancestry
        if current is not None and ancestry is not None and candidate.sha != current.sha:
            pair = (candidate.sha, current.sha)
            if pair not in ancestry:
                return NeedAncestry(pairs_to_ask(pair, ordered, current, ancestry))
            if ancestry[pair]:
                ctx.ignored["ancestor-of-running"] += 1
                continue
        examined = provenance.winner(candidate, ctx.facts.digests, claims)
        if isinstance(examined, Refusal):
            ctx.refuse(examined)
            continue
        return examined or candidate
    return None


def newer(ordered: Candidates, current: ParsedTag | None) -> Iterator[ParsedTag]:
    """The candidates newer than what runs (every one when that is unknown), read no further."""
    return (
        c
        for c in ordered.until(lambda c: order.older(c, current, {}) is True)
        if order.older(c, current, {}) is False
    )


def pairs_to_ask(
    first: tuple[str, str],
    ordered: Candidates,
    current: ParsedTag,
    known: Mapping[tuple[str, str], bool | None],
) -> tuple[tuple[str, str], ...]:
    """The ancestry questions the candidates newer than what runs may raise, asked at once (one git walk
    answers a round): the first ANCESTRY_BATCH at first, every one left once those are answered (the newest
    were builds the running commit contains)."""
    later = (
        (c.sha, current.sha)
        for c in newer(ordered, current)
        if c.sha != current.sha and (c.sha, current.sha) not in known
    )
    bounded = itertools.islice(later, ANCESTRY_BATCH) if not known else later
    return tuple(dict.fromkeys((first, *bounded)))
