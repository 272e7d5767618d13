"""The deploy policy: from what runs and the registry's tags, a Decision with its Reason. Pure: no I/O.

Guards, each a DESIGN invariant:
- only tags of an eligible branch and of the scheme are ever chosen (never -dirty builds);
- never an older build than the one running: the time in the tag orders builds; a running tag that cannot
  be read (a cold cache, a hand-written reference) is "unknown", never "older";
- a candidate whose commit is a strict ancestor of the running commit is not an upgrade, whatever its
  timestamp says (builds finish out of order); a newer build of the same code is (base-image: on a moved base);
- every deploy pins the digest, and a tag already deployed with its digest is not deployed again;
- a pinned app holds at its pin; at most one automatic deploy per app per cooldown window;
- a tag's claims are checked (`provenance`): a refused candidate is skipped, the next one considered.

The policy never fetches: where it needs a fact it does not have, it returns what it needs (NeedCreated,
NeedAncestry, NeedDigest, NeedCommit, …) and the reconciler asks it again with the answer. Deciding again
on files changed under a retry (a rejected push) is the same call with the new state: a pin that landed wins.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from tagtrail import provenance
from tagtrail.provenance import Claims, NeedCommit, NeedRevision, NeedSignature, Refusal
from tagtrail.provenance import NeedDigest as NeedDigest  # noqa: PLC0414 (re-exported)
from tagtrail.scheme import Candidates, ParsedTag, Ranking, Scheme
from tagtrail.scheme import ranking as order

Action = Literal["deploy", "hold", "nothing"]
ANCESTRY_BATCH = 16  # ancestry questions of one app's first round; the rest only if those are ancestors
_EARLIEST = datetime.min.replace(tzinfo=UTC)


class Reason(StrEnum):
    """Why a decision is what it is: a stable code, stored in the decision log and commit trailers."""

    NEWER_BUILD = "newer-build"
    REBUILD = "rebuild"
    BASE_IMAGE = "base-image"  # a rebuild of the running commit while the running build's base has moved
    RUNNING_UNKNOWN = "running-unknown"
    PIN_DIGEST = "pin-digest"
    UP_TO_DATE = "up-to-date"
    PINNED = "pinned"
    ROLLBACK = "rollback"
    PIN = "pin"
    PIN_FORCED = "pin-forced"  # a person pinned a tag that is not an eligible build, on purpose
    UNPIN = "unpin"
    ROLLOUT_FAILED = "rollout-failed"  # the cluster did not run the deployed build (or rolled it back)
    ROLLED_OUT = "rolled-out"  # the cluster runs the deployed build (a GitOps deploy, followed)
    NO_ELIGIBLE_TAGS = "no-eligible-tags"
    TOO_YOUNG = "too-young"
    ANCESTOR_OF_RUNNING = "ancestor-of-running"
    COOLDOWN = "cooldown"
    REGISTRY_ERROR = "registry-error"
    COMMIT_UNKNOWN = "commit-unknown"  # from here: a tag's claims refused (provenance.Refused)
    COMMIT_AMBIGUOUS = "commit-ambiguous"
    COMMIT_NOT_ON_BRANCH = "commit-not-on-branch"
    REVISION_MISMATCH = "revision-mismatch"
    DATED_IN_THE_FUTURE = "dated-in-the-future"
    TAG_MOVED = "tag-moved"
    UNSIGNED = "unsigned"
    SIGNATURE_INVALID = "signature-invalid"


@dataclass(frozen=True)
class AppPolicy:
    """What the config says about one app."""

    branches: tuple[str, ...]
    min_age: timedelta = timedelta(0)
    cooldown: timedelta = timedelta(0)
    pin: str | None = None


@dataclass(frozen=True)
class Running:
    """What is deployed now, as the deploy files say (tag and digest may be unknown)."""

    tag: str | None
    digest: str | None

    @property
    def shown(self) -> str | None:
        if self.tag is None:
            return None
        return self.tag + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class Decision:
    """What to do for one app and why. `reason` is a stable code; `sentence` is for people."""

    app: str
    action: Action
    reason: Reason
    sentence: str
    running: Running
    running_parsed: ParsedTag | None = None
    target: ParsedTag | None = None  # the build chosen, when it is a build of the scheme
    target_tag: str | None = None  # the tag chosen (a pin may name a tag outside the scheme)
    digest: str | None = None  # the chosen tag's digest: every deploy pins it
    ignored: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    behind: int | None = None  # eligible builds newer than the running one
    refusals: tuple[Refusal, ...] = ()  # candidates whose claims were not believed, newest first


@dataclass(frozen=True)
class NeedCreated:
    """The order of these tags depends on their images' `created` times: fetch them and decide again."""

    tags: tuple[str, ...]


@dataclass(frozen=True)
class NeedAncestry:
    """Whether each (candidate sha, running sha) pair's candidate is a strict ancestor of the running commit."""

    pairs: tuple[tuple[str, str], ...]


Need = NeedCreated | NeedAncestry | NeedDigest | NeedCommit | NeedRevision | NeedSignature


@dataclass(frozen=True)
class Facts:
    """Everything the policy looks at besides the config. `ancestry` is None where no source repository is
    at hand (the guard is then skipped); a pair mapped to None could not be told."""

    ranking: Ranking  # of the app's eligible branches
    now: datetime
    created: Mapping[str, datetime] = field(default_factory=dict)
    ancestry: Mapping[tuple[str, str], bool | None] | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    last_automatic: datetime | None = None
    automatic: bool = False
    total_tags: int = 0
    claims: Claims = field(default_factory=Claims)
    base_rebuilt: frozenset[str] = frozenset()  # shas of builds of the running code on its moved base image


def eligible_build(scheme: Scheme, branches: Sequence[str], tag: str | None) -> ParsedTag | None:
    """The tag read as a build of one of `branches`, or None: the one eligibility check (rollbacks, pins,
    hints and the dashboard ask it too)."""
    if not tag:
        return None
    parsed = scheme.parse(tag)
    if not isinstance(parsed, ParsedTag):
        return None
    tokens = {scheme.branch_token(b) for b in branches}
    return parsed if parsed.branch in tokens else None


@dataclass
class _Context:
    app: str
    running: Running
    current: ParsedTag | None
    facts: Facts
    ignored: Counter[str]
    branch_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tag token → branches
    refusals: list[Refusal] = field(default_factory=list)

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


def decide(app: str, scheme: Scheme, policy: AppPolicy, running: Running, facts: Facts) -> Decision | Need:
    """The decision for one app, or the fact it needs first."""
    parsed = scheme.parse(running.tag) if running.tag else None
    current = parsed if isinstance(parsed, ParsedTag) else None
    names = provenance.branch_names(scheme.branch_token, policy.branches)
    ctx = _Context(app, running, current, facts, Counter(facts.ranking.ignored), names)
    if policy.pin is not None:
        return _with_digest(ctx, _pinned(ctx, scheme, policy.pin))
    ordered = _candidates(ctx)
    if isinstance(ordered, NeedCreated):
        return ordered
    if not ordered:
        return ctx.decision(
            "hold", Reason.NO_ELIGIBLE_TAGS, f"no tag of {', '.join(policy.branches)} in the scheme"
        )
    behind = order.behind_count(ordered, ctx.current)
    chosen = _first_acceptable(ctx, ordered, policy)
    if chosen is not None and not isinstance(chosen, ParsedTag):
        return chosen
    if chosen is None or chosen.tag == running.tag:
        moved = provenance.running_moved(ctx.current, running.digest, facts.digests, facts.claims)
        if isinstance(moved, NeedDigest):
            return moved
        if moved is not None:
            ctx.refuse(moved, first=True)  # what runs moved: the first thing to say
        return _with_digest(ctx, _staying(ctx, policy, chosen, behind))
    if (
        facts.automatic
        and facts.last_automatic is not None
        and facts.now - facts.last_automatic < policy.cooldown
    ):
        wait = int((policy.cooldown - (facts.now - facts.last_automatic)).total_seconds())
        why = f"{chosen.tag} waits {wait} s: one automatic deploy per cooldown"
        return ctx.decision("hold", Reason.COOLDOWN, why, chosen, behind)
    if ctx.current is None:
        why = f"{running.tag or 'nothing'} is not a build of the scheme: deploying the newest eligible build"
        return _with_digest(ctx, ctx.decision("deploy", Reason.RUNNING_UNKNOWN, why, chosen, behind))
    if chosen.sha == ctx.current.sha or chosen.sha in facts.base_rebuilt:  # the running code, rebuilt
        reason = Reason.BASE_IMAGE if (on := chosen.sha in facts.base_rebuilt) else Reason.REBUILD
        why = f"{chosen.tag} rebuilds the code of {ctx.current.sha}{' on its moved base image' if on else ''}"
        return _with_digest(ctx, ctx.decision("deploy", reason, why, chosen, behind))
    why = f"{chosen.tag} is newer than {running.tag}"
    return _with_digest(ctx, ctx.decision("deploy", Reason.NEWER_BUILD, why, chosen, behind))


def explicit(
    app: str, scheme: Scheme, reason: Reason, tag: str, running: Running, digest: str | None
) -> Decision | NeedDigest:
    """A person's rollback or pin to `tag` (its eligibility was checked where they asked): deploy it,
    pinned by digest, unless the files already say exactly that."""
    parsed = scheme.parse(tag)
    current = scheme.parse(running.tag) if running.tag else None
    ctx = _Context(
        app,
        running,
        current if isinstance(current, ParsedTag) else None,
        Facts(Ranking(scheme, (), ()), _EARLIEST, digests={tag: digest} if digest else {}),
        Counter(),
    )
    target = parsed if isinstance(parsed, ParsedTag) else None
    return _with_digest(ctx, ctx.decision("deploy", reason, f"{reason} to {tag}", target, tag=tag))


def _with_digest(ctx: _Context, decision: Decision) -> Decision | NeedDigest:
    """A deploy needs its target's digest; one whose tag and digest the files already hold is nothing."""
    if decision.action != "deploy" or decision.target_tag is None:
        return decision
    if decision.digest is None:
        return NeedDigest(decision.target_tag)
    if decision.target_tag == ctx.running.tag and decision.digest == ctx.running.digest:
        return ctx.decision(
            "nothing",
            Reason.UP_TO_DATE,
            f"{decision.target_tag} is already deployed",
            decision.target,
            decision.behind,
            tag=decision.target_tag,
        )
    return decision


def _staying(ctx: _Context, policy: AppPolicy, chosen: ParsedTag | None, behind: int | None) -> Decision:
    """What runs stays: say why (newer builds that a guard held back are worth saying), and pin its digest
    where the files do not."""
    running = ctx.running
    if ctx.refusals:  # the newest refused candidate's reason; the others are counted in `ignored`
        first = ctx.refusals[0]
        return ctx.decision("hold", Reason(first.code), first.sentence, chosen, behind)
    if ctx.ignored["too-young"]:
        why = f"the newer builds are younger than the soak time {policy.min_age}"
        return ctx.decision("hold", Reason.TOO_YOUNG, why, chosen, behind)
    if ctx.ignored["ancestor-of-running"]:
        why = "the newer tags are of commits the running one already contains"
        return ctx.decision("hold", Reason.ANCESTOR_OF_RUNNING, why, chosen, behind)
    if chosen is None:
        return ctx.decision("nothing", Reason.UP_TO_DATE, f"nothing newer than {running.tag}", None, behind)
    if running.digest is None:
        # up to date by tag, but the files do not pin the digest: pin it (what runs is what was chosen)
        why = f"{chosen.tag} is current; pinning its digest"
        return ctx.decision("deploy", Reason.PIN_DIGEST, why, chosen, 0)
    return ctx.decision(
        "nothing", Reason.UP_TO_DATE, f"{running.tag} is the newest eligible build", chosen, 0
    )


def _pinned(ctx: _Context, scheme: Scheme, pin: str) -> Decision:
    parsed = scheme.parse(pin)
    target = parsed if isinstance(parsed, ParsedTag) else None
    behind = order.behind_count(Candidates(ctx.facts.ranking, Counter()), ctx.current)
    if ctx.running.tag == pin:
        why = f"pinned at {pin}; `tagtrail unpin {ctx.app}` resumes updates"
        return ctx.decision("hold", Reason.PINNED, why, target, behind, tag=pin)
    why = f"pinned at {pin}, but the files say {ctx.running.tag or 'nothing'}"
    return ctx.decision("deploy", Reason.PINNED, why, target, behind, tag=pin)


def _candidates(ctx: _Context) -> Candidates | NeedCreated:
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


def _first_acceptable(ctx: _Context, ordered: Candidates, policy: AppPolicy) -> ParsedTag | Need | None:
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
        claims = ctx.facts.claims
        screened = provenance.screen(candidate, ctx.branch_names, claims, ctx.facts.now)
        future = isinstance(screened, Refusal) and screened.code is provenance.Refused.DATED_IN_THE_FUTURE
        if not future and candidate.instants and max(candidate.instants) > ctx.facts.now - policy.min_age:
            ctx.ignored["too-young"] += 1
            continue
        if isinstance(screened, NeedCommit):  # every newer candidate's commit at once: one fetch
            return provenance.commit_needs(
                itertools.chain([candidate], _newer(ordered, ctx.current)), ctx.branch_names, claims
            )
        if screened is not None:
            ctx.refuse(screened)
            continue
        current, ancestry = ctx.current, ctx.facts.ancestry
        if current is not None and ancestry is not None and candidate.sha != current.sha:
            pair = (candidate.sha, current.sha)
            if pair not in ancestry:
                return NeedAncestry(_pairs_to_ask(pair, ordered, current, ancestry))
            if ancestry[pair]:
                ctx.ignored["ancestor-of-running"] += 1
                continue
        examined = provenance.winner(candidate, ctx.facts.digests, claims)
        if isinstance(examined, Refusal):
            ctx.refuse(examined)
            continue
        return examined or candidate
    return None


def _newer(ordered: Candidates, current: ParsedTag | None) -> Iterator[ParsedTag]:
    """The candidates newer than what runs (every one when that is unknown), read no further."""
    return (
        c
        for c in ordered.until(lambda c: order.older(c, current, {}) is True)
        if order.older(c, current, {}) is False
    )


def _pairs_to_ask(
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
        for c in _newer(ordered, current)
        if c.sha != current.sha and (c.sha, current.sha) not in known
    )
    bounded = itertools.islice(later, ANCESTRY_BATCH) if not known else later
    return tuple(dict.fromkeys((first, *bounded)))
